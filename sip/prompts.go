package sip

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
	"github.com/taxline/taxline/sip/media"
)

// Prompt names. The built-in files are configs/prompts/NAME.wav; the
// sip.prompts config key replaces any of them.
const (
	promptWelcome    = "welcome"
	promptQueued     = "queued"   // "坐席正忙，请稍候。"
	promptPosition   = "position" // "您前面还有" N
	promptPeople     = "people"   // "位来电者。"
	promptWait       = "wait"     // "预计等待时间约" N
	promptMinutes    = "minutes"  // "分钟。"
	promptAfterHours = "after_hours"
	promptSurvey     = "survey"
	promptClosing    = "closing"
	promptTransfer   = "transfer"
	promptHold       = "hold_music"
	promptBeep       = "voicemail_beep"
	maxSpokenNumber  = 20
)

// prompts holds each prompt as a clip: 8 kHz mono samples, encoded in
// both laws once at load.
type prompts map[string]*media.Clip

// loadPrompts reads the built-in prompts, then the admin's replacements
// (paths relative to the config file's directory).
func loadPrompts(cfg *config.Config, log *slog.Logger) (prompts, error) {
	p := prompts{}
	err := fs.WalkDir(configs.Prompts, "prompts", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := configs.Prompts.ReadFile(name)
		if err != nil {
			return err
		}
		pcm, err := decodePrompt(b)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		p[strings.TrimSuffix(path.Base(name), ".wav")] = media.NewClip(pcm)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sip: built-in prompts: %w", err)
	}
	for name, file := range cfg.SIP.Prompts {
		if !filepath.IsAbs(file) && cfg.Path != "" {
			file = filepath.Join(filepath.Dir(cfg.Path), file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("sip: prompt %q: %w", name, err)
		}
		pcm, err := decodePrompt(b)
		if err != nil {
			return nil, fmt.Errorf("sip: prompt %q (%s): %w", name, file, err)
		}
		if _, ok := p[name]; !ok {
			log.Warn("sip: config names a prompt the gateway does not use", "prompt", name)
		}
		p[name] = media.NewClip(pcm)
	}
	return p, nil
}

func decodePrompt(b []byte) ([]int16, error) {
	info, err := media.ReadWAV(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if info.Rate != 8000 || info.Channels != 1 {
		return nil, fmt.Errorf("want 8 kHz mono 16-bit, got %d Hz %d channels", info.Rate, info.Channels)
	}
	return info.Samples, nil
}

// clips lists the named prompts in order, to be played without a gap;
// unknown names are skipped.
func (p prompts) clips(names ...string) []*media.Clip {
	out := make([]*media.Clip, 0, len(names))
	for _, n := range names {
		if c, ok := p[n]; ok {
			out = append(out, c)
		}
	}
	return out
}

// number is the prompt that speaks n, capped at maxSpokenNumber.
func number(n int) string {
	n = max(0, min(n, maxSpokenNumber))
	return "num_" + strconv.Itoa(n)
}

// announcement is the position and estimated-wait announcement (P5):
// "您前面还有 N 位来电者。预计等待时间约 M 分钟。" Position 1 means next, so
// N = position-1 callers are ahead.
func announcement(position int, ewt time.Duration) []string {
	names := []string{promptPosition, number(position - 1), promptPeople}
	if ewt > 0 {
		mins := int((ewt + time.Minute - 1) / time.Minute)
		names = append(names, promptWait, number(mins), promptMinutes)
	}
	return names
}
