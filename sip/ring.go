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
		req.Laddr = gosip.Addr{IP: g.addr.Addr().AsSlice(), Port: int(g.addr.Port())}
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

	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dlg, err := g.dua.WriteInvite(wctx, req)
	if err != nil {
		res.cause, res.err = queue.RingLost, err
		return res
	}
	err = dlg.WaitAnswer(wctx, sipgo.AnswerOptions{OnResponse: func(r *gosip.Response) error {
		if r.IsProvisional() && r.StatusCode > 100 {
			rg.provisional.Store(true)
		}
		return nil
	}})
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
	case ctx.Err() != nil:
		res.cause = queue.RingNoAnswer // withdrawn; not reported
	case wctx.Err() != nil:
		res.cause = queue.RingNoAnswer
	default:
		res.cause = queue.RingLost
	}
	return res
}
