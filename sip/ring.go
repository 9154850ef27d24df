package sip

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"

	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sip/media"
)

// ringAgent INVITEs the agent's phone at its registered binding and waits
// for the answer, the timeout or a cancel. It owns the INVITE client
// transaction; the call owns what it returns.
func (g *Gateway) ringAgent(ctx context.Context, rg *ringing, b Binding, body []byte, from string,
	timeout time.Duration, prefs []string) ringResult {
	res := ringResult{gen: rg.gen}
	uri := b.Contact
	req := gosip.NewRequest(gosip.INVITE, uri)
	transport := strings.ToUpper(b.Transport)
	if transport == "" {
		transport = "UDP"
	}
	req.SetTransport(transport)
	if b.Source != "" {
		req.SetDestination(b.Source)
	}
	if transport == "UDP" {
		// Send from the listening socket, where the phone registered to.
		req.Laddr = gosip.Addr{IP: g.laddr.Addr().AsSlice(), Port: int(g.laddr.Port())}
	}
	callID := gosip.CallIDHeader(rg.callID)
	req.AppendHeader(&callID)
	if from == "" {
		from = "anonymous"
	}
	fh := &gosip.FromHeader{DisplayName: from,
		Address: gosip.Uri{Scheme: "sip", User: from, Host: g.addr.Addr().String(), Port: int(g.addr.Port())},
		Params:  gosip.NewParams()}
	fh.Params.Add("tag", gosip.GenerateTagN(16))
	req.AppendHeader(fh)
	req.AppendHeader(&gosip.ToHeader{Address: gosip.Uri{Scheme: "sip", User: b.Agent, Host: uri.Host, Port: uri.Port},
		Params: gosip.NewParams()})
	req.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)

	// WaitAnswer gets a context of its own that only we cancel: its
	// built-in CANCEL waits without bound for a phone that died, so we send
	// the CANCEL ourselves with a deadline and then let it go.
	wctx, force := context.WithCancelCause(context.WithoutCancel(ctx))
	defer force(nil)
	dlg, err := g.dua.WriteInvite(wctx, req)
	if err != nil {
		res.cause, res.err = queue.RingLost, err
		return res
	}
	answered := make(chan error, 1)
	go func() {
		answered <- dlg.WaitAnswer(wctx, sipgo.AnswerOptions{OnResponse: func(r *gosip.Response) error {
			if r.IsProvisional() && r.StatusCode > 100 {
				rg.provisional.Store(true)
			}
			return nil
		}})
	}()
	backstop := time.NewTimer(timeout)
	defer backstop.Stop()
	got := false
	select {
	case err = <-answered:
		got = true
	case <-rg.stop:
	case <-ctx.Done():
	case <-backstop.C:
	}
	if !got {
		err = g.stopInvite(dlg, rg, answered, force)
	}
	if err == nil {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer acancel()
		if err := dlg.Ack(actx); err != nil {
			res.cause, res.err = queue.RingLost, err
			return res
		}
		ans, err := media.ParseSDP(dlg.InviteResponse.Body())
		var codec media.Codec
		if err == nil {
			codec, err = media.Negotiate(ans, prefs)
		}
		if err != nil {
			_ = dlg.Bye(actx)
			res.cause, res.err = queue.RingDeclined, err
			return res
		}
		res.dlg, res.answer, res.codec = dlg, ans, codec
		return res
	}
	res.err = err
	var dr *sipgo.ErrDialogResponse
	var drv sipgo.ErrDialogResponse
	code := 0
	if errors.As(err, &dr) {
		code = dr.Res.StatusCode
	} else if errors.As(err, &drv) {
		code = drv.Res.StatusCode
	}
	switch {
	case code == gosip.StatusBusyHere || code == 600:
		res.cause = queue.RingBusy
	case code == gosip.StatusForbidden || code == 603:
		res.cause = queue.RingDeclined
	case code == gosip.StatusRequestTimeout || code == gosip.StatusTemporarilyUnavailable || code == gosip.StatusRequestTerminated:
		res.cause = queue.RingNoAnswer
	case code != 0:
		res.cause = queue.RingLost
	case errors.Is(err, errRingStopped):
		res.cause = queue.RingNoAnswer
	default:
		res.cause = queue.RingLost
	}
	return res
}

// errRingStopped: the ring was withdrawn or timed out before an answer.
var errRingStopped = errors.New("sip: ring stopped")

// stopInvite ends an unanswered INVITE: CANCEL (RFC 3261 §9.1) if the
// phone has sent a provisional response, wait briefly for the 487, and
// abandon the transaction if the phone is gone. It returns nil if the
// phone answered after all (the caller then sends BYE).
func (g *Gateway) stopInvite(dlg *sipgo.DialogClientSession, rg *ringing, answered chan error, force context.CancelCauseFunc) error {
	select {
	case err := <-answered:
		return err
	default:
	}
	if rg.provisional.Load() {
		inv := dlg.InviteRequest
		cancelReq := gosip.NewRequest(gosip.CANCEL, inv.Recipient)
		cancelReq.AppendHeader(gosip.HeaderClone(inv.Via()))
		cancelReq.AppendHeader(gosip.HeaderClone(inv.From()))
		cancelReq.AppendHeader(gosip.HeaderClone(inv.To()))
		cancelReq.AppendHeader(gosip.HeaderClone(inv.CallID()))
		cancelReq.AppendHeader(&gosip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: gosip.CANCEL})
		mf := gosip.MaxForwardsHeader(70)
		cancelReq.AppendHeader(&mf)
		gosip.CopyHeaders("Route", inv, cancelReq)
		cancelReq.SetTransport(inv.Transport())
		cancelReq.SetDestination(inv.Destination())
		cancelReq.Laddr = inv.Laddr
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		tx, err := g.cli.TransactionRequest(ctx, cancelReq, func(*sipgo.Client, *gosip.Request) error { return nil })
		if err == nil {
			select {
			case <-tx.Responses():
			case <-tx.Done():
			case <-ctx.Done():
			}
			tx.Terminate()
		}
		cancel()
		t := time.NewTimer(2 * time.Second) // the 487 (or a late 200)
		defer t.Stop()
		select {
		case err := <-answered:
			if err != nil {
				return errors.Join(errRingStopped, err)
			}
			return nil
		case <-t.C:
		}
	}
	force(sipgo.WaitAnswerForceCancelErr)
	if err := <-answered; err != nil {
		return errors.Join(errRingStopped, err)
	}
	return nil
}
