package media

import "testing"

func ev(e byte, end bool, dur uint16) []byte {
	b := []byte{e, 10, byte(dur >> 8), byte(dur)}
	if end {
		b[1] |= 0x80
	}
	return b
}

func TestDTMFDetector(t *testing.T) {
	var d DTMFDetector
	var got []byte
	feed := func(ts uint32, p []byte) {
		if c, ok := d.Packet(ts, p); ok {
			got = append(got, c)
		}
	}
	// "5": start, updates, three end packets.
	feed(1000, ev(5, false, 160))
	feed(1000, ev(5, false, 320))
	feed(1000, ev(5, true, 800))
	feed(1000, ev(5, true, 800))
	feed(1000, ev(5, true, 800))
	// "#" whose end packets are lost, then "3".
	feed(5000, ev(11, false, 160))
	feed(9000, ev(3, false, 160))
	feed(9000, ev(3, true, 480))
	feed(9000, ev(3, true, 480))
	// Garbage is ignored.
	feed(9000, []byte{1})
	if string(got) != "5#3" {
		t.Fatalf("digits %q, want 5#3", got)
	}
}

func TestParseTelephoneEvent(t *testing.T) {
	e, err := ParseTelephoneEvent([]byte{10, 0x8A, 0x03, 0x20})
	if err != nil || e.Event != 10 || !e.End || e.Volume != 10 || e.Duration != 800 || e.Digit() != '*' {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := ParseTelephoneEvent([]byte{1, 2, 3}); err == nil {
		t.Fatal("short payload accepted")
	}
}

func FuzzDTMF(f *testing.F) {
	f.Add(uint32(0), []byte{5, 0x8A, 0, 160})
	f.Add(uint32(160), []byte{11, 0x0A, 0, 160, 1, 2})
	f.Add(uint32(1), []byte{})
	f.Fuzz(func(t *testing.T, ts uint32, p []byte) {
		var d DTMFDetector
		for i := 0; i < 3; i++ {
			if c, ok := d.Packet(ts, p); ok && c == 0 {
				t.Fatal("reported a zero digit")
			}
		}
		if e, err := ParseTelephoneEvent(p); err == nil && e.Volume > 63 {
			t.Fatal("volume out of range")
		}
	})
}
