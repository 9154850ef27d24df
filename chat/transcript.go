package chat

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taxline/taxline/interaction"
)

// Line is one line of a chat transcript as the API shows it.
type Line struct {
	Seq      uint64    `json:"seq"`
	At       time.Time `json:"at"`
	From     string    `json:"from"`            // taxpayer, agent, system
	Agent    string    `json:"agent,omitempty"` // for agent lines
	Kind     string    `json:"kind"`            // text, image, system, choice
	Text     string    `json:"text,omitempty"`
	Image    string    `json:"image,omitempty"` // data URL
	ClientID string    `json:"client_id,omitempty"`
}

// Transcript folds a chat's events (from the store, in log order) into its
// transcript, ordered by sequence number, each line once. The API uses it
// for GET /api/v1/interactions/{id}; the caller audit-logs the read.
func Transcript(evs []interaction.Event) []Line {
	var out []Line
	seen := map[uint64]bool{}
	for _, e := range evs {
		if e.Type != interaction.ChatMessage {
			continue
		}
		seq, _ := strconv.ParseUint(e.Data["seq"], 10, 64)
		if seq != 0 && seen[seq] {
			continue
		}
		seen[seq] = true
		l := Line{Seq: seq, At: e.At, Kind: e.Data["kind"], Text: e.Data["text"], Image: e.Data["image"],
			ClientID: e.Data["client_id"]}
		switch {
		case e.Actor == interaction.ActorTaxpayer:
			l.From = FromTaxpayer
		case strings.HasPrefix(e.Actor, "agent:"):
			l.From, l.Agent = FromAgent, strings.TrimPrefix(e.Actor, "agent:")
		default:
			l.From = FromSystem
		}
		out = append(out, l)
	}
	slices.SortStableFunc(out, func(a, b Line) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	return out
}
