package chat_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/taxline/taxline/chat"
	"github.com/taxline/taxline/chat/chattest"
	"github.com/taxline/taxline/config"
)

// TestCannedAndDeskSession: the desk gets the configured canned replies at
// login (titled) and the screenshot limits in hello; a desk token outlives
// neither chat.desk_session.
func TestCannedAndDeskSession(t *testing.T) {
	cfg := testConfig(t)
	if !slices.Equal(chat.CannedResponses, textsOf(config.DefaultCanned())) || len(cfg.Chat.Canned) != 6 {
		t.Fatalf("default canned = %v (config %d)", chat.CannedResponses, len(cfg.Chat.Canned))
	}
	cfg.Chat.Canned = []config.CannedResponse{{Title: "问候", Text: "您好，这里是网上办税技术咨询。"}, {Title: "稍等", Text: "请稍等。"}}
	cfg.Chat.DeskSession = time.Nanosecond
	env := start(t, cfg)

	a := chattestDial(t, env.AgentURL)
	hello := expect(t, a, chat.TypeHello, nil)
	if !slices.Equal(hello.Canned, []string{"您好，这里是网上办税技术咨询。", "请稍等。"}) {
		t.Fatalf("hello canned = %v", hello.Canned)
	}
	if hello.Limits == nil || hello.Limits.MaxImageBytes != cfg.Chat.Limits.MaxImageBytes ||
		!slices.Equal(hello.Limits.ImageTypes, cfg.Chat.Limits.ImageTypes) {
		t.Fatalf("hello limits = %+v", hello.Limits)
	}
	send(t, a, chat.Frame{Type: chat.TypeLogin, Agent: "1001", Password: "demo-1001"})
	in := expect(t, a, chat.TypeLoggedIn, nil)
	want := []chat.CannedInfo{{Title: "问候", Text: "您好，这里是网上办税技术咨询。"}, {Title: "稍等", Text: "请稍等。"}}
	if !slices.Equal(in.CannedReplies, want) {
		t.Fatalf("logged_in canned_replies = %+v", in.CannedReplies)
	}
	a.Close()

	// The token has already expired (desk_session 1 ns): the password is
	// needed again.
	again := dial(t, env.AgentURL)
	send(t, again, chat.Frame{Type: chat.TypeLogin, Token: in.Token})
	expect(t, again, chat.TypeError, func(f chat.Frame) bool { return f.Code == "bad_login" })
}

func textsOf(c []config.CannedResponse) []string {
	var out []string
	for _, r := range c {
		out = append(out, r.Text)
	}
	return out
}

// chattestDial connects without reading the hello frame.
func chattestDial(t *testing.T, url string) *chattest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := chattest.Dial(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
