package sla

import "math"

// FeeRules are the amounts of the quarterly fee (R4, Art. 25–27).
type FeeRules struct {
	// QuarterShare: each quarter pays this share of the annual contract
	// amount (Art. 25: 每个季度费用均为合同金额的25%).
	QuarterShare float64 `json:"quarter_share"`
	// ComplaintDeduction: each valid complaint deducts this many yuan
	// from the quarter's fee, down to zero (Art. 26: 每有1次有效投诉…扣5000元
	// （季度费用中直接扣除，扣完为止）).
	ComplaintDeduction float64 `json:"complaint_deduction"`
	// FailedShare: a quarter assessed as failed pays only this share of
	// the annual contract (Art. 27: 该季度费用只支付当年合同金额的20%).
	FailedShare float64 `json:"failed_share"`
}

// DefaultFeeRules are the amounts in the text of Art. 25–27.
func DefaultFeeRules() FeeRules {
	return FeeRules{QuarterShare: 0.25, ComplaintDeduction: 5000, FailedShare: 0.20}
}

// Fee is one quarter's fee, in yuan, with how it was reached. Amounts are
// rounded to the fen (0.01 yuan).
type Fee struct {
	// Contract is the annual contract amount (当年合同金额).
	Contract   float64 `json:"contract"`
	Complaints int     `json:"complaints"`
	Failed     bool    `json:"failed"`
	// Quarter is Contract × QuarterShare, the fee of a passed quarter.
	Quarter float64 `json:"quarter"`
	// FailurePenalty is what Art. 27 takes off a failed quarter:
	// Contract × (QuarterShare − FailedShare), i.e. 5 % of the contract.
	FailurePenalty float64 `json:"failure_penalty"`
	// BeforeComplaints is Quarter − FailurePenalty.
	BeforeComplaints float64 `json:"before_complaints"`
	// ComplaintDeduction is Complaints × ComplaintDeduction, capped at
	// BeforeComplaints ("扣完为止").
	ComplaintDeduction float64 `json:"complaint_deduction"`
	// Payable is BeforeComplaints − ComplaintDeduction, never below zero.
	Payable float64 `json:"payable"`
}

// QuarterFee is FeeRules.QuarterFee with the amounts of Art. 25–27.
func QuarterFee(contract float64, complaints int, failed bool) Fee {
	return DefaultFeeRules().QuarterFee(contract, complaints, failed)
}

// QuarterFee computes one quarter's fee from the annual contract amount,
// the number of valid complaints in the quarter and whether the quarter
// was assessed as failed.
//
// Our reading of the order: Art. 27 fixes what a failed quarter pays (20 %
// of the annual contract instead of 25 %); Art. 26 then deducts ¥5,000 per
// valid complaint "from the quarter's fee", whatever that fee is, until
// nothing is left. The two are separate penalties in the same chapter
// (违约处罚) and neither article excludes the other, so a failed quarter
// with complaints pays max(0, 20 % × contract − 5,000 × complaints).
//
// A negative or non-finite contract amount and a negative complaint count
// are treated as zero; callers that take them from users should refuse
// them first.
func (r FeeRules) QuarterFee(contract float64, complaints int, failed bool) Fee {
	if !(contract > 0) || math.IsInf(contract, 0) {
		contract = 0
	}
	complaints = max(complaints, 0)
	f := Fee{Contract: contract, Complaints: complaints, Failed: failed}
	f.Quarter = fen(contract * r.QuarterShare)
	f.BeforeComplaints = f.Quarter
	if failed {
		f.BeforeComplaints = min(f.Quarter, fen(contract*r.FailedShare))
		f.FailurePenalty = fen(f.Quarter - f.BeforeComplaints)
	}
	f.ComplaintDeduction = fen(min(float64(complaints)*r.ComplaintDeduction, f.BeforeComplaints))
	f.Payable = max(fen(f.BeforeComplaints-f.ComplaintDeduction), 0)
	return f
}

// fen rounds a yuan amount to the fen, half away from zero.
func fen(yuan float64) float64 { return math.Round(yuan*100) / 100 }
