// Package media is the gateway's audio plane: G.711 codecs, SDP offer and
// answer (RFC 3264), RTP legs with symmetric RTP, the stream rewriting that
// keeps what each side hears continuous when its source switches from a
// prompt to the other leg (RFC 3550 §5.1, §8.2), a paced 20 ms player, RFC
// 4733 telephone-event parsing and a stereo WAV recorder whose header stays
// valid while it is written.
//
// Everything here is protocol and audio; call control lives in package sip.
package media
