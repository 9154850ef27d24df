package sla_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/taxline/taxline/sla"
)

func ps(pairs ...any) []sla.ProviderScore {
	var out []sla.ProviderScore
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, sla.ProviderScore{Provider: pairs[i].(string), Score: float64(pairs[i+1].(int))})
	}
	return out
}

func TestScore(t *testing.T) {
	type want struct {
		provider string
		rank     int
		baseline bool
		final    float64
	}
	for _, tc := range []struct {
		name     string
		in       []sla.ProviderScore
		standard float64
		want     []want
	}{
		{"one provider is its own baseline", ps("A", 90), 100,
			[]want{{"A", 1, true, 80}}},
		{"two: the higher-ranked of the middle two", ps("B", 60, "A", 90), 100,
			[]want{{"A", 1, true, 80}, {"B", 2, false, 80 * 60.0 / 90}}},
		{"odd count: the middle one", ps("C", 81, "A", 95, "B", 90), 100,
			[]want{{"A", 1, false, 80 * 95.0 / 90}, {"B", 2, true, 80}, {"C", 3, false, 72}}},
		{"even count: second of four", ps("D", 40, "C", 60, "B", 80, "A", 100), 50,
			[]want{{"A", 1, false, 50}, {"B", 2, true, 40}, {"C", 3, false, 30}, {"D", 4, false, 20}}},
		{"even count of six: third", ps("A", 100, "B", 90, "C", 80, "D", 70, "E", 60, "F", 50), 100,
			[]want{{"A", 1, false, 100}, {"B", 2, false, 90}, {"C", 3, true, 80}, {"D", 4, false, 70},
				{"E", 5, false, 60}, {"F", 6, false, 50}}},
		{"tie in the middle: both at the baseline", ps("D", 70, "C", 85, "B", 85, "A", 90), 100,
			[]want{{"A", 1, false, 80 * 90.0 / 85}, {"B", 2, true, 80}, {"C", 2, false, 80}, {"D", 4, false, 80 * 70.0 / 85}}},
		{"all equal", ps("B", 90, "A", 90, "C", 90), 100,
			[]want{{"A", 1, false, 80}, {"B", 1, true, 80}, {"C", 1, false, 80}}},
		{"a zero score below the baseline", ps("A", 90, "B", 80, "C", 0), 100,
			[]want{{"A", 1, false, 90}, {"B", 2, true, 80}, {"C", 3, false, 0}}},
		{"above the baseline is not capped at the standard", ps("A", 100, "B", 50, "C", 40), 100,
			[]want{{"A", 1, false, 160}, {"B", 2, true, 80}, {"C", 3, false, 64}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sla.Score(tc.in, tc.standard)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d results, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Provider != w.provider || g.Rank != w.rank || g.Baseline != w.baseline || math.Abs(g.Final-w.final) > 1e-9 {
					t.Errorf("result %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestScoreRules(t *testing.T) {
	got, err := sla.ScoreRules{BaselineShare: 0.9}.Score(ps("A", 90, "B", 60, "C", 30), 100)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Final != 90*90.0/60 || got[1].Final != 90 || got[2].Final != 45 {
		t.Errorf("90 %% baseline share: %+v", got)
	}
	if _, err := (sla.ScoreRules{}).Score(ps("A", 90), 100); err == nil {
		t.Error("zero baseline share accepted")
	}
}

func TestScoreErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       []sla.ProviderScore
		standard float64
		is       error
	}{
		{"empty", nil, 100, sla.ErrNoScores},
		{"zero baseline", ps("A", 50, "B", 0, "C", 0), 100, sla.ErrBaseline},
		{"only provider scored zero", ps("A", 0), 100, sla.ErrBaseline},
		{"negative score", ps("A", 90, "B", -1), 100, nil},
		{"NaN score", []sla.ProviderScore{{"A", math.NaN()}}, 100, nil},
		{"infinite score", []sla.ProviderScore{{"A", math.Inf(1)}}, 100, nil},
		{"zero standard", ps("A", 90), 0, nil},
		{"negative standard", ps("A", 90), -100, nil},
		{"NaN standard", ps("A", 90), math.NaN(), nil},
		{"duplicate provider", ps("A", 90, " A ", 80), 100, nil},
		{"unnamed provider", ps(" ", 90), 100, nil},
	} {
		_, err := sla.Score(tc.in, tc.standard)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
		}
		if !strings.HasPrefix(err.Error(), "sla: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
	}
}

func TestReadScores(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []sla.ProviderScore
	}{
		{"English header", "provider,score\nA,90\nB, 85.5\n", []sla.ProviderScore{{"A", 90}, {"B", 85.5}}},
		{"Chinese header", "服务商,季度考核分值\n甲公司,92\n乙公司,88\n", []sla.ProviderScore{{"甲公司", 92}, {"乙公司", 88}}},
		{"byte-order mark and CRLF", "\ufeffprovider,score\r\nA,90\r\n", []sla.ProviderScore{{"A", 90}}},
		{"no header", "A,90\nB,80", []sla.ProviderScore{{"A", 90}, {"B", 80}}},
		{"blank lines and comments", "# Q1 2026\n\nA,90\n\n# late entry\nB,80\n", []sla.ProviderScore{{"A", 90}, {"B", 80}}},
		{"quoted name with a comma", "\"上海某某科技有限公司, 浦东\",91\n", []sla.ProviderScore{{"上海某某科技有限公司, 浦东", 91}}},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sla.ReadScores(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("line %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestReadScoresErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"not a number", "A,90\nB,abc\n", "line 2"},
		{"header not first", "A,90\nprovider,score\n", "line 2"},
		{"three fields", "provider,score\nA,90,1\n", "line 2"},
		{"one field", "A\n", "line 1"},
		{"no name", "A,90\n,80\n", "line 2"},
		{"NaN", "A,NaN\n", "line 1"},
		{"infinity", "# c\nA,+Inf\n", "line 2"},
		{"repeated provider", "A,90\nB,80\nA,70\n", "line 3"},
		{"bad quoting", "A,90\n\"B,80\n", "line 2"},
	} {
		_, err := sla.ReadScores(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sla: ") {
			t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.want)
		}
	}
}

func FuzzReadScores(f *testing.F) {
	for _, s := range []string{
		"provider,score\nA,90\nB,85.5\n",
		"\ufeff服务商,分值\r\n甲,92\r\n",
		"A,90\n\"B,80\n",
		"# c\n\nA,1e308\nB,-0\n",
		"A,NaN\n",
		",,,\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := sla.ReadScores(strings.NewReader(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sla: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, s := range got {
			if s.Provider == "" || seen[s.Provider] || math.IsNaN(s.Score) || math.IsInf(s.Score, 0) {
				t.Errorf("ReadScores(%q) returned a bad score %+v", in, s)
			}
			seen[s.Provider] = true
		}
		// Whatever parses must score or fail cleanly, never panic.
		_, _ = sla.Score(got, sla.DefaultStandard)
	})
}
