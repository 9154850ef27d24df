package media

import "strconv"

// Law is a G.711 companding law (ITU-T G.711).
type Law uint8

// Laws.
const (
	LawUnknown Law = iota
	ALaw           // PCMA, static payload type 8
	ULaw           // PCMU, static payload type 0
)

func (l Law) String() string {
	switch l {
	case ALaw:
		return "PCMA"
	case ULaw:
		return "PCMU"
	}
	return "law(" + strconv.Itoa(int(l)) + ")"
}

// StaticPT is the law's static RTP payload type (RFC 3551 §6).
func (l Law) StaticPT() uint8 {
	if l == ULaw {
		return 0
	}
	return 8
}

// ParseLaw maps an SDP encoding name to a law.
func ParseLaw(name string) Law {
	switch name {
	case "PCMA", "pcma":
		return ALaw
	case "PCMU", "pcmu":
		return ULaw
	}
	return LawUnknown
}

// Silence is the encoded value of a zero sample in the law.
func (l Law) Silence() byte {
	if l == ULaw {
		return 0xFF
	}
	return 0xD5
}

// Decode expands G.711 bytes into 16-bit linear samples, appending to dst.
func (l Law) Decode(dst []int16, src []byte) []int16 {
	t := &alawTable
	if l == ULaw {
		t = &ulawTable
	}
	for _, b := range src {
		dst = append(dst, t[b])
	}
	return dst
}

// Encode compresses linear samples into G.711 bytes, appending to dst.
func (l Law) Encode(dst []byte, src []int16) []byte {
	if l == ULaw {
		for _, s := range src {
			dst = append(dst, ulawEncode(s))
		}
		return dst
	}
	for _, s := range src {
		dst = append(dst, alawEncode(s))
	}
	return dst
}

// Decoding tables, computed once; they are never written after init.
var (
	alawTable = buildTable(alawDecode)
	ulawTable = buildTable(ulawDecode)
)

func buildTable(f func(byte) int16) (t [256]int16) {
	for i := range t {
		t[i] = f(byte(i))
	}
	return t
}

func alawDecode(a byte) int16 {
	a ^= 0x55
	t := int32(a&0x0F) << 4
	seg := int32(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

func alawEncode(s int16) byte {
	pcm := int32(s) >> 3 // 13-bit magnitude range
	var mask byte
	if pcm >= 0 {
		mask = 0xD5
	} else {
		mask = 0x55
		pcm = -pcm - 1
	}
	segEnd := [8]int32{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
	seg := 0
	for seg < 8 && pcm > segEnd[seg] {
		seg++
	}
	if seg >= 8 {
		return 0x7F ^ mask
	}
	aval := byte(seg << 4)
	if seg < 2 {
		aval |= byte(pcm>>1) & 0x0F
	} else {
		aval |= byte(pcm>>uint(seg)) & 0x0F
	}
	return aval ^ mask
}

const ulawBias = 0x84

func ulawDecode(u byte) int16 {
	u = ^u
	t := (int32(u&0x0F) << 3) + ulawBias
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(ulawBias - t)
	}
	return int16(t - ulawBias)
}

func ulawEncode(s int16) byte {
	pcm := int32(s) >> 2 // 14-bit
	var mask byte
	if pcm < 0 {
		pcm = -pcm
		mask = 0x7F
	} else {
		mask = 0xFF
	}
	if pcm > 8159 {
		pcm = 8159
	}
	pcm += ulawBias >> 2
	segEnd := [8]int32{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
	seg := 0
	for seg < 8 && pcm > segEnd[seg] {
		seg++
	}
	if seg >= 8 {
		return 0x7F ^ mask
	}
	return (byte(seg<<4) | byte(pcm>>uint(seg+1))&0x0F) ^ mask
}
