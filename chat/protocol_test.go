package chat

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
)

func TestDecodeFrame(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{`{"v":1,"type":"open"}`, nil},
		{`{"v":2,"type":"open"}`, errBadFrame},
		{`{"v":1}`, errBadFrame},
		{`{"v":1,"type":"send","text":1}`, errBadFrame},
		{"{\"v\":1,\"type\":\"send\",\"text\":\"\xff\"}", errBadUTF8},
		{`[]`, errBadFrame},
	} {
		_, err := decodeFrame([]byte(tc.in))
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("decodeFrame(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

// FuzzDecodeFrame: any client bytes either decode to a versioned frame or
// fail with one of the two close-worthy errors; never a panic.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{`{"v":1,"type":"open","topic":"general","taxpayer":{"id":"1","name":"张三"}}`,
		`{"v":1,"type":"send","client_id":"c1","text":"你好","image":"data:image/png;base64,iVBORw0KGgo="}`,
		`{"v":1,"type":"resume","token":"ab","last_seq":18446744073709551615}`, `{"v":1,"type":"rate","score":5}`,
		`{"v":1,"type":"login","agent":"1001","password":"x"}`, "{\"v\":1,\"type\":\"\xc3\"}", `{"v":1e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err == nil && (fr.V != Version || fr.Type == "") {
			t.Fatalf("accepted %q as %+v", b, fr)
		}
		if err != nil && !errors.Is(err, errBadFrame) && !errors.Is(err, errBadUTF8) {
			t.Fatalf("unexpected error kind %v", err)
		}
	})
}

func TestParseImage(t *testing.T) {
	png := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	types := []string{"image/png", "image/jpeg"}
	if _, n, err := parseImage(png, types, 1000); err != nil || n == 0 {
		t.Fatalf("valid PNG refused: %v", err)
	}
	for _, bad := range []string{
		"iVBORw0KGgo=",       // not a data URL
		"data:image/png,abc", // not base64
		"data:image/gif;base64,R0lGODlhAQABAAAAACw=",                                  // type not allowed
		"data:image/jpeg;base64," + strings.TrimPrefix(png, "data:image/png;base64,"), // content is not JPEG
		"data:image/png;base64,!!!!",
	} {
		if _, _, err := parseImage(bad, types, 1000); err == nil {
			t.Errorf("parseImage(%.40q) accepted", bad)
		}
	}
	if _, _, err := parseImage(png, types, 10); err == nil {
		t.Error("an image over the size limit was accepted")
	}
}

func FuzzParseImage(f *testing.F) {
	f.Add("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
	f.Add("data:image/jpeg;base64,/9j/4AAQSkZJRg==")
	f.Add("data:;base64,")
	f.Fuzz(func(t *testing.T, s string) {
		mime, n, err := parseImage(s, []string{"image/png", "image/jpeg"}, 4096)
		if err == nil && (n > 4096 || (mime != "image/png" && mime != "image/jpeg")) {
			t.Fatalf("accepted %q: %s %d", s, mime, n)
		}
	})
}

func TestOriginAllowed(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		allowed      []string
		want         bool
	}{
		{"", "desk.local", nil, true},
		{"http://desk.local", "desk.local", nil, true},
		{"http://evil.example", "desk.local", nil, false},
		{"https://etax.sh.gov.cn", "chat.local", []string{"https://etax.sh.gov.cn"}, true},
		{"https://etax.sh.gov.cn.evil", "chat.local", []string{"https://etax.sh.gov.cn"}, false},
		{"https://any.example", "chat.local", []string{"*"}, true},
	} {
		r := httptest.NewRequest("GET", "http://"+tc.host+"/ws/chat", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := originAllowed(r, tc.allowed); got != tc.want {
			t.Errorf("origin %q host %q allowed %v: %v, want %v", tc.origin, tc.host, tc.allowed, got, tc.want)
		}
	}
}

func TestTranscriptOrdersAndDedups(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	line := func(seq, actor, text string) interaction.Event {
		return interaction.Event{Type: interaction.ChatMessage, At: at, ID: "x", Actor: actor,
			Data: map[string]string{"seq": seq, "text": text, "kind": "text"}}
	}
	evs := []interaction.Event{
		line("2", "agent:1001", "您好"),
		{Type: interaction.Answered, ID: "x"},
		line("1", "taxpayer", "在吗"),
		line("2", "agent:1001", "您好"), // replayed after a restart
		line("3", "system", "会话结束"),
	}
	got := Transcript(evs)
	if len(got) != 3 || got[0].From != FromTaxpayer || got[1].Agent != "1001" || got[2].From != FromSystem {
		t.Fatalf("transcript = %+v", got)
	}
}

func TestDurationZH(t *testing.T) {
	for d, want := range map[time.Duration]string{2 * time.Minute: "2 分钟", 30 * time.Second: "30 秒",
		90 * time.Second: "90 秒", 800 * time.Millisecond: "0.8 秒"} {
		if got := durationZH(d); got != want {
			t.Errorf("durationZH(%v) = %q, want %q", d, got, want)
		}
	}
}
