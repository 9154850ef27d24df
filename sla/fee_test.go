package sla_test

import (
	"math"
	"testing"

	"github.com/taxline/taxline/sla"
)

func TestQuarterFee(t *testing.T) {
	for _, tc := range []struct {
		name                                      string
		contract                                  float64
		complaints                                int
		failed                                    bool
		quarter, penalty, before, deduct, payable float64
	}{
		{"passed, no complaints", 1_000_000, 0, false, 250_000, 0, 250_000, 0, 250_000},
		{"passed, three complaints", 1_000_000, 3, false, 250_000, 0, 250_000, 15_000, 235_000},
		{"failed, no complaints", 1_000_000, 0, true, 250_000, 50_000, 200_000, 0, 200_000},
		{"failed, two complaints", 1_000_000, 2, true, 250_000, 50_000, 200_000, 10_000, 190_000},
		{"complaints exactly use up the fee", 100_000, 5, false, 25_000, 0, 25_000, 25_000, 0},
		{"complaints beyond the fee stop at zero", 100_000, 6, false, 25_000, 0, 25_000, 25_000, 0},
		{"failed, complaints beyond the fee", 100_000, 5, true, 25_000, 5_000, 20_000, 20_000, 0},
		{"uneven contract rounds to the fen", 1_234_567, 1, true, 308_641.75, 61_728.35, 246_913.4, 5_000, 241_913.4},
		{"negative complaints count as none", 1_000_000, -2, false, 250_000, 0, 250_000, 0, 250_000},
		{"negative contract counts as zero", -5, 1, false, 0, 0, 0, 0, 0},
		{"no contract", 0, 0, true, 0, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := sla.QuarterFee(tc.contract, tc.complaints, tc.failed)
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"quarter", f.Quarter, tc.quarter},
				{"failure penalty", f.FailurePenalty, tc.penalty},
				{"before complaints", f.BeforeComplaints, tc.before},
				{"complaint deduction", f.ComplaintDeduction, tc.deduct},
				{"payable", f.Payable, tc.payable},
			} {
				if math.Abs(c.got-c.want) > 0.001 {
					t.Errorf("%s = %.2f, want %.2f", c.name, c.got, c.want)
				}
			}
			if f.Payable < 0 || f.Failed != tc.failed || f.Complaints < 0 {
				t.Errorf("fee = %+v", f)
			}
		})
	}
}

func TestFeeRules(t *testing.T) {
	if got := sla.DefaultFeeRules(); got != (sla.FeeRules{QuarterShare: 0.25, ComplaintDeduction: 5000, FailedShare: 0.20}) {
		t.Errorf("defaults = %+v", got)
	}
	r := sla.FeeRules{QuarterShare: 0.30, ComplaintDeduction: 1000, FailedShare: 0.10}
	f := r.QuarterFee(200_000, 3, true)
	if f.Quarter != 60_000 || f.BeforeComplaints != 20_000 || f.FailurePenalty != 40_000 || f.Payable != 17_000 {
		t.Errorf("custom rules = %+v", f)
	}
	if got := sla.DefaultScoreRules(); got.BaselineShare != 0.80 {
		t.Errorf("score defaults = %+v", got)
	}
}
