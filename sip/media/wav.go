package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// WAV errors.
var (
	ErrNotWAV      = errors.New("media: not a RIFF/WAVE file")
	ErrWAVFormat   = errors.New("media: unsupported WAV format (want 16-bit PCM)")
	ErrWAVTooLarge = errors.New("media: WAV data exceeds 4 GiB")
)

const wavHeaderSize = 44

// WAVFile is where a WAVWriter writes; storage.BlobWriter satisfies it.
type WAVFile interface {
	io.Writer
	io.WriterAt
	Sync() error
	Close() error
}

// WAVWriter writes 16-bit PCM as a canonical 44-byte-header WAV file. The
// RIFF and data sizes are rewritten by UpdateHeader (the Recorder does it
// every second) so that a file cut short by a crash still plays up to its
// last update; RepairWAV recovers the rest.
type WAVWriter struct {
	f        WAVFile
	channels int
	data     int64 // bytes of samples written
	buf      []byte
}

// NewWAVWriter writes the header and returns the writer.
func NewWAVWriter(f WAVFile, channels, rate int) (*WAVWriter, error) {
	w := &WAVWriter{f: f, channels: channels}
	if _, err := f.Write(wavHeader(channels, rate, 0)); err != nil {
		return nil, fmt.Errorf("media: write WAV header: %w", err)
	}
	return w, nil
}

func wavHeader(channels, rate int, data uint32) []byte {
	h := make([]byte, wavHeaderSize)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+data)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*channels*2))
	binary.LittleEndian.PutUint16(h[32:], uint16(channels*2))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], data)
	return h
}

// Write appends interleaved samples.
func (w *WAVWriter) Write(samples []int16) error {
	w.buf = w.buf[:0]
	for _, s := range samples {
		w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(s))
	}
	return w.WriteLE(w.buf)
}

// WriteLE appends interleaved samples already in the file's encoding,
// 16-bit little-endian.
func (w *WAVWriter) WriteLE(b []byte) error {
	if w.data+int64(len(b)) > 0xFFFFFFFF-36 {
		return ErrWAVTooLarge
	}
	n, err := w.f.Write(b)
	w.data += int64(n)
	if err != nil {
		return fmt.Errorf("media: write WAV: %w", err)
	}
	return nil
}

// Samples is how many sample frames (one sample per channel) were written.
func (w *WAVWriter) Samples() int64 { return w.data / int64(2*w.channels) }

// UpdateHeader writes the current sizes into the header.
func (w *WAVWriter) UpdateHeader() error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(36+w.data))
	if _, err := w.f.WriteAt(b[:], 4); err != nil {
		return fmt.Errorf("media: update WAV header: %w", err)
	}
	binary.LittleEndian.PutUint32(b[:], uint32(w.data))
	if _, err := w.f.WriteAt(b[:], 40); err != nil {
		return fmt.Errorf("media: update WAV header: %w", err)
	}
	return nil
}

// Close updates the header, syncs and closes the file.
func (w *WAVWriter) Close() error {
	err := w.UpdateHeader()
	if serr := w.f.Sync(); err == nil && serr != nil {
		err = fmt.Errorf("media: sync WAV: %w", serr)
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("media: close WAV: %w", cerr)
	}
	return err
}

// WAVInfo describes a decoded WAV file.
type WAVInfo struct {
	Channels int
	Rate     int
	// Samples holds the interleaved 16-bit samples.
	Samples []int16
}

// ReadWAV decodes a 16-bit PCM WAV file, skipping chunks other than fmt and
// data. A data size larger than what follows (a file cut short) is read as
// far as it goes.
func ReadWAV(r io.Reader) (WAVInfo, error) {
	var info WAVInfo
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return info, ErrNotWAV
	}
	gotFmt := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return info, fmt.Errorf("%w: no data chunk", ErrNotWAV)
		}
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		switch string(ch[0:4]) {
		case "fmt ":
			if size < 16 || size > 1<<16 {
				return info, ErrWAVFormat
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil {
				return info, ErrNotWAV
			}
			if binary.LittleEndian.Uint16(b[0:]) != 1 && binary.LittleEndian.Uint16(b[0:]) != 0xFFFE ||
				binary.LittleEndian.Uint16(b[14:]) != 16 {
				return info, ErrWAVFormat
			}
			info.Channels = int(binary.LittleEndian.Uint16(b[2:]))
			info.Rate = int(binary.LittleEndian.Uint32(b[4:]))
			if info.Channels < 1 {
				return info, ErrWAVFormat
			}
			gotFmt = true
		case "data":
			if !gotFmt {
				return info, ErrWAVFormat
			}
			b, err := io.ReadAll(io.LimitReader(r, size))
			if err != nil {
				return info, fmt.Errorf("media: read WAV: %w", err)
			}
			info.Samples = make([]int16, len(b)/2)
			for i := range info.Samples {
				info.Samples[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
			}
			return info, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return info, fmt.Errorf("%w: truncated chunk", ErrNotWAV)
			}
		}
	}
}

// RepairWAV makes a file written by WAVWriter and cut short (a crash
// between header updates) playable: it sets the RIFF and data sizes to
// what the file holds, dropping a trailing half sample frame. It reports
// whether anything changed.
func RepairWAV(f interface {
	io.ReaderAt
	io.WriterAt
	io.Seeker
}) (bool, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, fmt.Errorf("media: repair WAV: %w", err)
	}
	h := make([]byte, wavHeaderSize)
	if _, err := f.ReadAt(h, 0); err != nil {
		return false, fmt.Errorf("%w: %v", ErrNotWAV, err)
	}
	if string(h[0:4]) != "RIFF" || string(h[8:16]) != "WAVEfmt " || string(h[36:40]) != "data" {
		return false, ErrNotWAV
	}
	align := int64(binary.LittleEndian.Uint16(h[32:]))
	if align < 1 {
		return false, ErrWAVFormat
	}
	data := size - wavHeaderSize
	data -= data % align
	if data > 0xFFFFFFFF-36 {
		data = (0xFFFFFFFF - 36) / align * align
	}
	if int64(binary.LittleEndian.Uint32(h[40:])) == data && int64(binary.LittleEndian.Uint32(h[4:])) == 36+data {
		return false, nil
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(36+data))
	if _, err := f.WriteAt(b[:], 4); err != nil {
		return false, fmt.Errorf("media: repair WAV: %w", err)
	}
	binary.LittleEndian.PutUint32(b[:], uint32(data))
	if _, err := f.WriteAt(b[:], 40); err != nil {
		return false, fmt.Errorf("media: repair WAV: %w", err)
	}
	return true, nil
}
