package config_test

import (
	"errors"
	"testing"
	"time"

	"github.com/taxline/taxline/config"
)

// TestChatCannedAndDeskSession: defaults, a title made from the text, and
// the problems of a bad list or lifetime.
func TestChatCannedAndDeskSession(t *testing.T) {
	c, err := config.Parse("f.yaml", []byte("chat:\n  canned:\n    - {text: 请稍等，我正在为您查询开票软件的问题。}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Chat.Canned) != 1 || c.Chat.Canned[0].Title != "请稍等，我正在为您查询开" {
		t.Fatalf("canned = %+v", c.Chat.Canned)
	}
	if c.Chat.DeskSession != 14*time.Hour {
		t.Fatalf("desk_session = %v", c.Chat.DeskSession)
	}
	d, err := config.Parse("f.yaml", []byte("server:\n  http: 127.0.0.1:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Chat.Canned) != len(config.DefaultCanned()) || d.Chat.Canned[0] != config.DefaultCanned()[0] {
		t.Fatalf("default canned = %+v", d.Chat.Canned)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"chat:\n  canned:\n    - {title: 空}\n", "f.yaml:3: chat.canned[0].text: is required"},
		{"chat:\n  desk_session: -1h\n", "f.yaml:2: chat.desk_session: must be a positive duration"},
	} {
		_, err := config.Parse("f.yaml", []byte(tc.yaml))
		var ce *config.Error
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].String() != tc.want {
			t.Errorf("%q: err = %v, want a problem about %s", tc.yaml, err, tc.want)
		}
	}
}
