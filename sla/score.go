package sla

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// DefaultStandard is the standard score (标准分值) the quarterly scoring
// uses when none is given: a score out of 100.
const DefaultStandard = 100.0

// ScoreRules are the amounts of the Art. 23 quarterly scoring (R3).
type ScoreRules struct {
	// BaselineShare is the baseline score as a share of the standard
	// score: 基准分 = 标准分值 × 80 %.
	BaselineShare float64 `json:"baseline_share"`
}

// DefaultScoreRules are the amounts in the text of Art. 23.
func DefaultScoreRules() ScoreRules { return ScoreRules{BaselineShare: 0.80} }

// Errors of the quarterly scoring.
var (
	// ErrNoScores: there is no provider to score.
	ErrNoScores = errors.New("sla: no provider scores")
	// ErrBaseline: the middle provider's score is zero or negative, so
	// the ratio of Art. 23 has no meaning.
	ErrBaseline = errors.New("sla: the baseline (middle) score must be positive")
)

// ProviderScore is one provider's quarter assessment score (季度考核分值).
type ProviderScore struct {
	Provider string  `json:"provider"`
	Score    float64 `json:"score"`
}

// ProviderResult is one provider's final score (考核最终得分).
type ProviderResult struct {
	Provider string  `json:"provider"`
	Score    float64 `json:"score"`
	// Rank is the position high→low, 1 first; equal scores share the
	// better rank (1, 2, 2, 4).
	Rank int `json:"rank"`
	// Baseline marks the middle provider whose score is the baseline
	// value (排名居中服务商).
	Baseline bool `json:"baseline"`
	// Final is the final score.
	Final float64 `json:"final"`
}

// Score is ScoreRules.Score with the amounts of Art. 23.
func Score(scores []ProviderScore, standard float64) ([]ProviderResult, error) {
	return DefaultScoreRules().Score(scores, standard)
}

// Score computes Art. 23's final scores. The text:
//
//	将服务商季度考核分值从高到低排序，取中间服务商作为"排名居中服务商"，为基准值。
//	中间服务商有两个的，取排名靠前者为"排名居中服务商"。达到基准值的机构得基准分
//	（标准分值×80%），其他服务商最终得分为：考核最终得分=基准分×（季度考核分值÷基准值）。
//
// Our reading:
//   - sort the quarter scores high→low (equal scores in provider-name
//     order, which changes nothing: equal scores get equal results);
//   - the baseline provider is the middle one: of n providers, position
//     (n+1)/2 counting from 1 — for an odd n the middle, for an even n the
//     higher-ranked of the two middle ones; its score is the baseline value
//     (基准值);
//   - the baseline score (基准分) is standard × BaselineShare (80 %);
//   - a provider whose score equals the baseline value (达到基准值) gets the
//     baseline score; every other provider gets baseline score × (its
//     score ÷ baseline value), above the baseline as well as below: 达到
//     is read as "equals", since the formula then agrees with the first
//     clause at the baseline, and capping the providers above the median at
//     the baseline score would make the ranking above the middle
//     meaningless, unlike the SAT's proportional scoring the article
//     follows (比照国家税务总局绩效考评量化计分方式). Results are not capped
//     at the standard score: the text sets no cap.
//
// Errors: no scores (ErrNoScores), a baseline value ≤ 0 (ErrBaseline), a
// standard ≤ 0, a negative or non-finite score, an empty or repeated
// provider name.
func (r ScoreRules) Score(scores []ProviderScore, standard float64) ([]ProviderResult, error) {
	if len(scores) == 0 {
		return nil, ErrNoScores
	}
	if !(standard > 0) || math.IsInf(standard, 0) {
		return nil, fmt.Errorf("sla: standard score must be a positive number, not %v", standard)
	}
	if !(r.BaselineShare > 0) || math.IsInf(r.BaselineShare, 0) {
		return nil, fmt.Errorf("sla: baseline share must be positive, not %v", r.BaselineShare)
	}
	out := make([]ProviderResult, len(scores))
	seen := map[string]bool{}
	for i, s := range scores {
		name := strings.TrimSpace(s.Provider)
		switch {
		case name == "":
			return nil, fmt.Errorf("sla: provider %d has no name", i+1)
		case seen[name]:
			return nil, fmt.Errorf("sla: provider %q is listed twice", name)
		case math.IsNaN(s.Score) || math.IsInf(s.Score, 0):
			return nil, fmt.Errorf("sla: provider %q: score %v is not a number", name, s.Score)
		case s.Score < 0:
			return nil, fmt.Errorf("sla: provider %q: score %v is negative", name, s.Score)
		}
		seen[name] = true
		out[i] = ProviderResult{Provider: name, Score: s.Score}
	}
	slices.SortFunc(out, func(a, b ProviderResult) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Provider, b.Provider)
	})
	mid := (len(out) - 1) / 2 // 0-based: the middle, or the higher of two
	baseValue := out[mid].Score
	if baseValue <= 0 {
		return nil, fmt.Errorf("%w: %q has %v", ErrBaseline, out[mid].Provider, baseValue)
	}
	baseScore := standard * r.BaselineShare
	for i := range out {
		o := &out[i]
		o.Rank = i + 1
		if i > 0 && o.Score == out[i-1].Score {
			o.Rank = out[i-1].Rank
		}
		o.Baseline = i == mid
		if o.Score == baseValue {
			o.Final = baseScore
		} else {
			o.Final = baseScore * (o.Score / baseValue)
		}
	}
	return out, nil
}

// ReadScores reads "provider,score" CSV lines, as `taxline score` takes on
// standard input. A first line whose score column is not a number is a
// header and is skipped; blank lines and lines starting with # are
// skipped; a UTF-8 byte-order mark is ignored. Any other line that is not
// exactly a name and a finite number, or that repeats a provider, is an
// error naming its line.
func ReadScores(r io.Reader) ([]ProviderScore, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	var out []ProviderScore
	seen := map[string]int{}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sla: scores: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if first {
			rec[0] = strings.TrimPrefix(rec[0], "\ufeff")
		}
		if len(rec) != 2 {
			return nil, fmt.Errorf("sla: scores line %d: want provider,score, got %d fields", line, len(rec))
		}
		name, val := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		score, perr := strconv.ParseFloat(val, 64)
		if first && perr != nil {
			continue // a header such as "provider,score" or "服务商,季度考核分值"
		}
		switch {
		case name == "":
			return nil, fmt.Errorf("sla: scores line %d: no provider name", line)
		case perr != nil || math.IsNaN(score) || math.IsInf(score, 0):
			return nil, fmt.Errorf("sla: scores line %d: score %q is not a number", line, val)
		case seen[name] > 0:
			return nil, fmt.Errorf("sla: scores line %d: provider %q already given on line %d", line, name, seen[name])
		}
		seen[name] = line
		out = append(out, ProviderScore{Provider: name, Score: score})
	}
}
