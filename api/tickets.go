package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/storage"
)

// Message tickets (M2, M3): voicemail, web messages and C4 follow-ups.
// An agent sees the unowned tickets of the queues it serves and the ones
// it owns (D1); the taxpayer's number and id are masked and the message
// withheld until it claims one (POST .../ack), which makes it the owner
// (P4). Only the owner, a supervisor or an admin answers one.

// ticketDesk serialises claims: the check that a ticket is unowned, the
// router's acknowledgement and the store catching up happen under mu, so
// two agents clicking at once cannot both be told they own it.
type ticketDesk struct {
	s  *Server
	mu sync.Mutex // held across one claim
}

// mountTickets registers GET /api/v1/tickets and POST
// /api/v1/tickets/{id}/ack and /answer.
func (s *Server) mountTickets() {
	d := &ticketDesk{s: s}
	s.mux.HandleFunc("GET /api/v1/tickets", s.auth(s.listTickets))
	s.mux.HandleFunc("POST /api/v1/tickets/{id}/ack", s.auth(d.claim))
	s.mux.HandleFunc("POST /api/v1/tickets/{id}/answer", s.auth(d.answer))
}

// syncer is a store that can wait until what was emitted is durable
// (*storage.DB does): a claim waits for it, so the claimer's next read
// (the recording) already sees it as the owner.
type syncer interface {
	Sync(ctx context.Context) error
}

// ticketJSON is one ticket as GET /api/v1/tickets shows it.
type ticketJSON struct {
	ID interaction.ID `json:"id"`
	// Kind is voicemail, web (a web message) or follow_up (a chat whose
	// taxpayer chose "answer me later", C4).
	Kind         string         `json:"kind"`
	Channel      string         `json:"channel"`
	Queue        string         `json:"queue"`
	State        string         `json:"state"`
	Parent       interaction.ID `json:"parent,omitempty"`
	Agent        string         `json:"agent"`
	Phone        string         `json:"taxpayer_phone,omitempty"`
	TaxpayerID   string         `json:"taxpayer_id,omitempty"`
	TaxpayerName string         `json:"taxpayer_name,omitempty"`
	Topic        string         `json:"topic,omitempty"`
	// Text is the web message; Recording the voicemail's URL. Both only
	// when Masked is false.
	Text           string     `json:"text,omitempty"`
	HasRecording   bool       `json:"has_recording"`
	Recording      string     `json:"recording,omitempty"`
	DurationMS     int64      `json:"duration_ms,omitempty"`
	OfferedAt      time.Time  `json:"offered_at"`
	AckBy          *time.Time `json:"ack_by"`
	AnswerBy       *time.Time `json:"answer_by"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	AnsweredAt     *time.Time `json:"answered_at,omitempty"`
	Disposition    string     `json:"disposition,omitempty"`
	// Due is the next deadline of an open ticket: ack_by until it is
	// acknowledged, then answer_by.
	Due     *time.Time `json:"due,omitempty"`
	Overdue bool       `json:"overdue"`
	// Masked: the caller's number and id are masked and the message
	// withheld, because the agent does not own the ticket (yet).
	Masked bool `json:"masked,omitempty"`
}

// isTicket reports whether rec is a message or follow-up ticket.
func isTicket(rec *interaction.Record) bool {
	return rec.Channel == interaction.Message && !rec.AckBy.IsZero()
}

// due is the next deadline of an open ticket.
func due(rec *interaction.Record) time.Time {
	if rec.AcknowledgedAt.IsZero() {
		return rec.AckBy
	}
	return rec.AnswerBy
}

// overdue reports whether an open ticket is past a deadline, or the
// router said so.
func overdue(rec *interaction.Record, now time.Time) bool {
	if rec.Overdue {
		return true
	}
	if rec.State != interaction.StateOpen {
		return false
	}
	return (rec.AcknowledgedAt.IsZero() && now.After(rec.AckBy)) || now.After(rec.AnswerBy)
}

// maskNumber keeps the first three and the last four characters of a
// phone number or taxpayer id (13800138000 → 138****8000); short ones
// keep only their last two.
func maskNumber(s string) string {
	r := []rune(s)
	switch n := len(r); {
	case n >= 8:
		return string(r[:3]) + "****" + string(r[n-4:])
	case n > 2:
		return strings.Repeat("*", n-2) + string(r[n-2:])
	default:
		return strings.Repeat("*", n)
	}
}

// settle waits until the store holds every event the router emitted so
// far, so a ticket read from it is not behind the router (an answer just
// given, a claim just made).
func (s *Server) settle(w http.ResponseWriter, r *http.Request) bool {
	sy, ok := s.store.(syncer)
	if !ok {
		return true
	}
	if err := sy.Sync(r.Context()); err != nil {
		s.log.Error("api ticket store sync", "err", err)
		writeError(w, http.StatusServiceUnavailable, "storage unavailable")
		return false
	}
	return true
}

// ticketView builds the JSON of rec. created is its TicketCreated data;
// full says the principal may see the message and the caller.
func ticketView(rec *interaction.Record, created map[string]string, full bool, now time.Time) ticketJSON {
	j := ticketJSON{
		ID: rec.ID, Channel: rec.Channel.String(), Queue: rec.Queue, State: rec.State.String(),
		Parent: rec.Parent, Agent: rec.Agent, Phone: rec.TaxpayerPhone, TaxpayerID: rec.TaxpayerID,
		TaxpayerName: created["taxpayer_name"], Topic: rec.Topic, Text: created["text"],
		HasRecording: rec.Recording != "" || created["recording"] != "",
		OfferedAt:    rec.OfferedAt, AckBy: tp(rec.AckBy), AnswerBy: tp(rec.AnswerBy),
		AcknowledgedAt: tp(rec.AcknowledgedAt), AnsweredAt: tp(rec.TicketAnswered),
		Overdue: overdue(rec, now),
	}
	j.DurationMS, _ = strconv.ParseInt(created["duration_ms"], 10, 64)
	switch {
	case j.HasRecording:
		j.Kind = "voicemail"
	case created["source"] == "web" || j.Text != "":
		j.Kind = "web"
	default:
		j.Kind = "follow_up"
	}
	if rec.State == interaction.StateOpen {
		j.Due = tp(due(rec))
	} else {
		j.Disposition = rec.Disposition.String()
	}
	if rec.Recording != "" {
		j.Recording = "/api/v1/recordings/" + string(rec.ID)
	}
	if !full {
		j.Masked = true
		j.Phone, j.TaxpayerID = maskNumber(j.Phone), maskNumber(j.TaxpayerID)
		j.TaxpayerName, j.Text, j.Recording = "", "", ""
	}
	return j
}

// created returns the data of id's TicketCreated event.
func (s *Server) created(id interaction.ID) (map[string]string, error) {
	evs, err := s.store.Events(id)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		if e.Type == interaction.TicketCreated {
			return e.Data, nil
		}
	}
	return map[string]string{}, nil
}

// serves reports whether the agent serves queue q (config agents[].queues).
func serves(cfg *config.Config, agent, q string) bool {
	for _, a := range cfg.Agents {
		if a.ID == agent {
			return slices.Contains(a.Queues, q)
		}
	}
	return false
}

// listTickets serves GET /api/v1/tickets?state=open|all&queue=&limit=:
// open tickets, the nearest deadline first (with state=all, then the
// answered ones, the latest first).
func (s *Server) listTickets(w http.ResponseWriter, r *http.Request, p Principal) {
	if !p.can(config.RoleAgent, config.RoleSupervisor, config.RoleAdmin, config.RoleAuditor) {
		writeError(w, http.StatusForbidden, "role "+string(p.Role)+" may not list tickets")
		return
	}
	q := r.URL.Query()
	all := false
	switch q.Get("state") {
	case "", "open":
	case "all":
		all = true
	default:
		writeError(w, http.StatusBadRequest, "state must be open or all")
		return
	}
	limit := 200
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be 1–1000")
			return
		}
		limit = n
	}
	queueName := q.Get("queue")
	cfg := s.config()
	agent := p.Role == config.RoleAgent

	recs, err := s.openTickets()
	if err == nil && all {
		f := storage.Filter{Channel: interaction.Message, Limit: limit}
		if agent {
			f.Agent = p.Agent
		}
		var more []interaction.Record
		more, err = s.store.List(f)
		for _, rec := range more {
			if rec.State != interaction.StateOpen {
				recs = append(recs, rec)
			}
		}
	}
	if err != nil {
		s.log.Error("api tickets", "err", err)
		writeError(w, http.StatusInternalServerError, "storage error")
		return
	}
	recs = slices.DeleteFunc(recs, func(rec interaction.Record) bool {
		if !isTicket(&rec) || (queueName != "" && rec.Queue != queueName) {
			return true
		}
		// D1: an agent sees its own, and the unowned ones it could claim.
		return agent && rec.Agent != p.Agent && (rec.Agent != "" || !serves(cfg, p.Agent, rec.Queue))
	})
	slices.SortStableFunc(recs, func(a, b interaction.Record) int {
		ao, bo := a.State == interaction.StateOpen, b.State == interaction.StateOpen
		switch {
		case ao && bo:
			return cmp.Or(due(&a).Compare(due(&b)), a.OfferedAt.Compare(b.OfferedAt))
		case ao:
			return -1
		case bo:
			return 1
		}
		return b.TicketAnswered.Compare(a.TicketAnswered)
	})
	if len(recs) > limit {
		recs = recs[:limit]
	}

	now := s.now()
	out := make([]ticketJSON, 0, len(recs))
	var audits []interaction.Event
	for i := range recs {
		rec := &recs[i]
		data, err := s.created(rec.ID)
		if err != nil {
			s.log.Error("api tickets events", "id", rec.ID, "err", err)
			writeError(w, http.StatusInternalServerError, "storage error")
			return
		}
		full := !agent || rec.Agent == p.Agent
		j := ticketView(rec, data, full, now)
		if j.Text != "" && !(agent && rec.Agent == p.Agent) {
			// Someone other than its owner reads a taxpayer's message (D1).
			audits = append(audits, interaction.Event{Type: interaction.Audit, At: now, ID: rec.ID, Actor: p.Actor(),
				Data: map[string]string{"what": "message", "role": string(p.Role), "src": r.RemoteAddr}})
		}
		out = append(out, j)
	}
	if len(audits) > 0 {
		if err := s.store.Append(r.Context(), audits...); err != nil {
			s.log.Error("api audit write failed; refusing the read", "err", err)
			writeError(w, http.StatusServiceUnavailable, "audit log unavailable")
			return
		}
		s.log.Info("audit", "actor", p.Actor(), "what", "message", "tickets", len(audits))
	}
	writeJSON(w, http.StatusOK, out)
}

// openTickets returns the store's open tickets: from its open-ticket index
// when it has one, else by scanning the message channel.
func (s *Server) openTickets() ([]interaction.Record, error) {
	if ot, ok := s.store.(openTicketer); ok {
		return ot.OpenTickets()
	}
	recs, err := s.store.List(storage.Filter{Channel: interaction.Message})
	return slices.DeleteFunc(recs, func(rec interaction.Record) bool { return rec.State != interaction.StateOpen }), err
}

// ticket loads the ticket named in the path, answering the request itself
// when there is none.
func (s *Server) ticket(w http.ResponseWriter, r *http.Request) (interaction.Record, bool) {
	id := interaction.ID(r.PathValue("id"))
	if !id.Valid() {
		writeError(w, http.StatusBadRequest, "malformed ticket id")
		return interaction.Record{}, false
	}
	rec, err := s.store.Interaction(id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !isTicket(&rec)) {
		writeError(w, http.StatusNotFound, "no such ticket")
		return rec, false
	}
	if err != nil {
		s.log.Error("api ticket", "id", id, "err", err)
		writeError(w, http.StatusInternalServerError, "storage error")
		return rec, false
	}
	return rec, true
}

// mayWork checks that an agent may act on rec: its own, or (when
// unowned is true) an unowned one of a queue it serves. Other roles pass.
func (s *Server) mayWork(w http.ResponseWriter, p Principal, rec *interaction.Record, unowned bool) bool {
	if p.Role != config.RoleAgent || rec.Agent == p.Agent {
		return true
	}
	switch {
	case rec.Agent != "":
		writeError(w, http.StatusForbidden, "this ticket belongs to another agent")
	case !serves(s.config(), p.Agent, rec.Queue):
		writeError(w, http.StatusForbidden, "agent "+p.Agent+" does not serve queue "+rec.Queue)
	case !unowned:
		writeError(w, http.StatusConflict, "claim the ticket first")
	default:
		return true
	}
	return false
}

// claim serves POST /api/v1/tickets/{id}/ack: the agent has listened to or
// read the message (M3). The first agent to acknowledge an unowned ticket
// owns it; the answer is the ticket, unmasked.
func (d *ticketDesk) claim(w http.ResponseWriter, r *http.Request, p Principal) {
	s := d.s
	if p.Role != config.RoleAgent {
		writeError(w, http.StatusForbidden, "only an agent acknowledges a ticket")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !s.settle(w, r) {
		return
	}
	rec, ok := s.ticket(w, r)
	if !ok || !s.mayWork(w, p, &rec, true) {
		return
	}
	if rec.State != interaction.StateOpen {
		writeError(w, http.StatusConflict, "the ticket is already answered")
		return
	}
	if err := s.router.AckTicket(r.Context(), rec.ID, p.Agent); err != nil {
		s.routerResult(w, err)
		return
	}
	if !s.settle(w, r) {
		return
	}
	if rec, ok = s.ticket(w, r); !ok {
		return
	}
	if rec.Agent != p.Agent {
		writeError(w, http.StatusConflict, "the ticket was taken by another agent")
		return
	}
	data, err := s.created(rec.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "storage error")
		return
	}
	writeJSON(w, http.StatusOK, ticketView(&rec, data, true, s.now()))
}

// answerBody is the optional body of POST /api/v1/tickets/{id}/answer.
type answerBody struct {
	Note        string `json:"note"`
	ScopeReason string `json:"scope_reason"`
}

// answer serves POST /api/v1/tickets/{id}/answer?disposition=: the owner
// (or a supervisor or admin) answered the ticket (M3). An out_of_scope
// answer needs a configured scope_reason (P4); it and the note are stored
// on the ticket.
func (d *ticketDesk) answer(w http.ResponseWriter, r *http.Request, p Principal) {
	s := d.s
	if !p.can(config.RoleAgent, config.RoleSupervisor, config.RoleAdmin) {
		writeError(w, http.StatusForbidden, "role "+string(p.Role)+" may not work tickets")
		return
	}
	disp := interaction.Resolved
	if v := r.URL.Query().Get("disposition"); v != "" {
		var err error
		disp, err = interaction.ParseDisposition(v)
		if err != nil || disp == interaction.DispositionTransferred {
			writeError(w, http.StatusBadRequest, "disposition must be resolved, follow_up or out_of_scope")
			return
		}
	}
	var body answerBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "body must be empty or JSON {note, scope_reason}")
		return
	}
	if disp == interaction.OutOfScope && !slices.Contains(s.config().ScopeReasons, body.ScopeReason) {
		writeError(w, http.StatusBadRequest, "out_of_scope needs a scope_reason from the configured list")
		return
	}
	if !s.settle(w, r) {
		return
	}
	rec, ok := s.ticket(w, r)
	if !ok || !s.mayWork(w, p, &rec, false) {
		return
	}
	if rec.State != interaction.StateOpen {
		writeError(w, http.StatusConflict, "the ticket is already answered")
		return
	}
	s.answerTicket(w, r, p, queue.TicketAnswer{Disposition: disp, ScopeReason: body.ScopeReason, Note: body.Note})
}
