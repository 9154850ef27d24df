package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
)

func TestDemoConfigIsValid(t *testing.T) {
	c, err := config.Parse("demo.yaml", configs.Demo)
	if err != nil {
		t.Fatalf("demo config: %v", err)
	}
	if got := len(c.Agents); got != 5 {
		t.Errorf("agents = %d, want 5", got)
	}
	if c.Chat.FirstResponse != config.DefaultFirstResponse {
		t.Errorf("first_response = %v", c.Chat.FirstResponse)
	}
	if len(c.Calendar.Holidays) != 33 || len(c.Calendar.Workdays) != 6 {
		t.Errorf("calendar: %d holidays, %d workdays; want 33 and 6", len(c.Calendar.Holidays), len(c.Calendar.Workdays))
	}
}

func TestParseProblemsHaveLines(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // substring of the single expected problem
		line       int
	}{
		{"unknown key", "server:\n  http: 127.0.0.1:1\n  htpp: x\n", "htpp", 3},
		{"type error", "phone:\n  ring_timeout: soon\n", "", 2},
		{"bad overflow", "queues:\n  - name: a\n    max_wait: 1m\n    overflow: nowhere\n", `no queue named "nowhere"`, 4},
		{"negative", "queues:\n  - name: a\n    max_length: -1\n", "cannot be negative", 3},
		{"bad syntax", "queues: [\n", "", 0},
		{"agent unknown queue", "agents:\n  - id: \"1\"\n    queues: [x]\n", `no queue named "x"`, 3},
		{"token hash", "auth:\n  tokens:\n    - {name: a, role: admin, sha256: abc}\n", "64 lower-case hex", 3},
		{"overflow loop", "queues:\n  - {name: a, max_wait: 1m, overflow: b}\n  - {name: b, max_wait: 1m, overflow: a}\n", "loops back", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("f.yaml", []byte(tc.yaml))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			p := ce.Problems[0]
			if p.File != "f.yaml" || !strings.Contains(p.Msg, tc.want) {
				t.Errorf("problem = %q, want file f.yaml and %q", p, tc.want)
			}
			if tc.line != 0 && p.Line != tc.line {
				t.Errorf("line = %d, want %d (%s)", p.Line, tc.line, p)
			}
			if !strings.HasPrefix(p.String(), "f.yaml:") {
				t.Errorf("String() = %q", p.String())
			}
		})
	}
}

func TestDefaultsFollowRules(t *testing.T) {
	c, err := config.Parse("empty.yaml", []byte("{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]any{
		"C2": c.Chat.FirstResponse, "C4": c.Chat.AgentSilence,
		"C5": c.Chat.CustomerSilenceReminder, "P3": c.Phone.AnswerTarget,
		"M3 ack": c.Messages.AcknowledgeWithin, "M3 answer": c.Messages.AnswerWithin,
		"P2": c.Phone.AnswerRateTarget, "S3": c.Retention.Years,
	} {
		want := map[string]any{
			"C2": config.DefaultFirstResponse, "C4": config.DefaultAgentSilence,
			"C5": config.DefaultCustomerSilenceReminder, "P3": config.DefaultAnswerTarget,
			"M3 ack": 1, "M3 answer": 2, "P2": 0.90, "S3": 3,
		}[name]
		if got != want {
			t.Errorf("%s default = %v, want %v", name, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(configs.Demo)
	f.Add([]byte("queues:\n  - name: a\n    overflow: b\n"))
	f.Add([]byte("chat: {first_response: 1s}\n"))
	f.Add([]byte("hours:\n  h: {weekly: [{days: [mon], from: '25:00', to: '01:00'}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz.yaml", data)
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error %v is not a *config.Error with problems", err)
			}
			return
		}
		if c.Validate() != nil {
			t.Fatalf("Parse accepted a config that Validate refuses")
		}
	})
}

func TestTemplateIsValid(t *testing.T) {
	c, err := config.Load("../configs/taxline.yaml")
	if err != nil {
		t.Fatalf("configs/taxline.yaml: %v", err)
	}
	if len(c.Calendar.Holidays) != 33 || len(c.Auth.Tokens) != 0 {
		t.Errorf("template: %d holidays, %d tokens", len(c.Calendar.Holidays), len(c.Auth.Tokens))
	}
	for _, a := range c.Agents {
		if a.Password != "" {
			t.Errorf("the template must not ship credentials (agent %s)", a.ID)
		}
	}
}
