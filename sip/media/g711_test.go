package media

import "testing"

func TestG711RoundTrip(t *testing.T) {
	for _, law := range []Law{ALaw, ULaw} {
		// Every code decodes to a value that encodes back to itself (except
		// µ-law's negative zero, which maps to positive zero).
		for i := 0; i < 256; i++ {
			s := law.Decode(nil, []byte{byte(i)})[0]
			b := law.Encode(nil, []int16{s})[0]
			if b != byte(i) && !(law == ULaw && i == 0x7F) {
				t.Errorf("%v: code %#x -> %d -> %#x", law, i, s, b)
			}
		}
		if got := law.Decode(nil, []byte{law.Silence()})[0]; got < -8 || got > 8 {
			t.Errorf("%v: silence decodes to %d", law, got)
		}
		// Error stays within G.711's step size across the range.
		for s := -32768; s < 32768; s += 7 {
			d := law.Decode(nil, law.Encode(nil, []int16{int16(s)}))[0]
			diff := int(d) - s
			if diff < 0 {
				diff = -diff
			}
			lim := abs(s)/16 + 16
			if diff > lim {
				t.Fatalf("%v: %d -> %d (off by %d)", law, s, d, diff)
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
