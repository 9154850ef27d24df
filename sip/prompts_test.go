package sip

import (
	"slices"
	"testing"
	"time"

	"github.com/taxline/taxline/config"
)

func TestAnnouncement(t *testing.T) {
	for _, tc := range []struct {
		pos  int
		ewt  time.Duration
		want []string
	}{
		{1, 0, []string{"position", "num_0", "people"}},
		{3, 90 * time.Second, []string{"position", "num_2", "people", "wait", "num_2", "minutes"}},
		{40, time.Hour, []string{"position", "num_20", "people", "wait", "num_20", "minutes"}},
	} {
		if got := announcement(tc.pos, tc.ewt); !slices.Equal(got, tc.want) {
			t.Errorf("announcement(%d, %v) = %v, want %v", tc.pos, tc.ewt, got, tc.want)
		}
	}
}

// TestBuiltinPrompts: every prompt the calls use ships in configs/prompts
// as 8 kHz mono audio of a sensible length.
func TestBuiltinPrompts(t *testing.T) {
	p, err := loadPrompts(&config.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{promptWelcome, promptQueued, promptPosition, promptPeople, promptWait, promptMinutes,
		promptAfterHours, promptSurvey, promptClosing, promptTransfer, promptHold, promptBeep}
	for i := 0; i <= maxSpokenNumber; i++ {
		names = append(names, number(i))
	}
	for _, n := range names {
		d := time.Duration(p[n].Len()) * time.Second / 8000
		if d < 200*time.Millisecond || d > 30*time.Second {
			t.Errorf("prompt %q is %v long", n, d)
		}
	}
}

// TestBuiltinPromptsShort: callers sit through every second of a prompt,
// so the built-in ones stay short (they were 6.5 s, 21 s and 17 s) and the
// embedded set small.
func TestBuiltinPromptsShort(t *testing.T) {
	p, err := loadPrompts(&config.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range p {
		total += 2 * c.Len()
	}
	for name, limit := range map[string]time.Duration{
		promptWelcome: 4 * time.Second, promptAfterHours: 11 * time.Second, promptSurvey: 10 * time.Second,
		promptTransfer: 6 * time.Second, promptClosing: 2500 * time.Millisecond, promptQueued: 2500 * time.Millisecond,
	} {
		if d := time.Duration(p[name].Len()) * time.Second / 8000; d > limit {
			t.Errorf("prompt %q is %v long, want at most %v", name, d, limit)
		}
	}
	if total > 1<<20 {
		t.Errorf("built-in prompts hold %d bytes of audio, want at most 1 MiB", total)
	}
}
