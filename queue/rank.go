package queue

import (
	"slices"

	"github.com/taxline/taxline/interaction"
)

// rankKey groups waiting interactions that are served in arrival order
// against each other: same channel, same priority, whatever their skills.
type rankKey struct {
	channel  interaction.Channel
	priority int
}

// rankIndex answers "how many of my group arrived before me" in O(log n),
// so position announcements to thousands of waiting taxpayers do not each
// walk the queue. It keeps the arrival numbers (ixn.seq) of the group's
// waiting interactions sorted. Arrival number order is queue order: an
// interaction's entry time is set once, when its number is drawn, and is
// kept across requeues and transfers.
//
// New arrivals append; the head leaves by moving an offset; anything else
// (an abandon, a requeue) shifts the slice, which is cheap next to the
// cost of what caused it.
type rankIndex struct {
	seqs []uint64
	head int
}

func (r *rankIndex) insert(seq uint64) {
	live := r.seqs[r.head:]
	if n := len(live); n == 0 || live[n-1] < seq {
		r.seqs = append(r.seqs, seq)
		return
	}
	i, _ := slices.BinarySearch(live, seq)
	r.seqs = slices.Insert(r.seqs, r.head+i, seq)
}

func (r *rankIndex) remove(seq uint64) {
	live := r.seqs[r.head:]
	i, ok := slices.BinarySearch(live, seq)
	if !ok {
		return
	}
	if i == 0 {
		r.head++
		if r.head >= 1024 && r.head*2 >= len(r.seqs) {
			r.seqs = append(r.seqs[:0], r.seqs[r.head:]...)
			r.head = 0
		}
		return
	}
	r.seqs = slices.Delete(r.seqs, r.head+i, r.head+i+1)
}

// before counts the group's waiting interactions that arrived before seq.
func (r *rankIndex) before(seq uint64) int {
	i, _ := slices.BinarySearch(r.seqs[r.head:], seq)
	return i
}
