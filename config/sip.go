package config

import "time"

// SIP gateway defaults that are not bureau rules.
const (
	// DefaultRTPTimeout is sip.rtp_timeout's default.
	DefaultRTPTimeout = 60 * time.Second
	// DefaultRTPBatch is sip.rtp_batch's default.
	DefaultRTPBatch = 5 * time.Millisecond
	// DefaultSessionExpires is sip.session_expires's default.
	DefaultSessionExpires = 30 * time.Minute
	// MinSessionExpires is the smallest session interval RFC 4028 §4
	// allows (the Min-SE floor of 90 seconds).
	MinSessionExpires = 90 * time.Second
)

// SIP configures the SIP gateway: trunks, the agents' registrar, media and
// prompts.
type SIP struct {
	// Trunks deliver taxpayers' calls (P1).
	Trunks []Trunk `yaml:"trunks"`
	// Registrar configures agents' softphone registrations.
	Registrar Registrar `yaml:"registrar"`
	// RTPPorts is the UDP port range for media, "low-high".
	RTPPorts string `yaml:"rtp_ports"`
	// RTPBatch is how often the media sockets are read in rounds (on
	// Linux): a relayed packet waits up to this long at the gateway, and
	// no thread is woken per packet. 0s reads every socket as packets
	// arrive, a goroutine per leg (more CPU per packet, no added delay).
	// Default 5ms; at most 20ms (one packet's worth of audio).
	RTPBatch *time.Duration `yaml:"rtp_batch"`
	// MediaAddress is the IP address the gateway advertises: in the c=
	// and o= lines of its SDP and in its Contact and Via headers. RTP
	// sockets bind to the server.sip listen IP. Default (empty): the listen
	// IP, or, when that is unspecified (0.0.0.0, ::), the first
	// non-loopback address of an interface that is up (127.0.0.1 if
	// there is none). Set it when the gateway sits behind 1:1 NAT or
	// listens on every interface of a multi-homed host.
	MediaAddress string `yaml:"media_address"`
	// Codecs in order of preference: PCMA, PCMU.
	Codecs []string `yaml:"codecs"`
	// Prompts maps a prompt name (welcome, position, wait, after_hours,
	// survey, closing, hold_music, voicemail_beep) to a WAV file; unset
	// names use the built-in Simplified Chinese prompts.
	Prompts map[string]string `yaml:"prompts"`
	// VoicemailMax bounds a voice message's length (M2).
	VoicemailMax time.Duration `yaml:"voicemail_max"`
	// Survey turns on the post-call keypad survey (S6, P5).
	Survey *bool `yaml:"survey"`
	// SurveyTimeout is how long to wait for the digit.
	SurveyTimeout time.Duration `yaml:"survey_timeout"`
	// RTPTimeout ends a call whose caller or agent has sent no RTP for
	// this long (a dead phone or trunk, a cut link): both legs are hung up
	// and the interaction ends through the router. A stream that the SDP
	// puts on hold (sendonly, recvonly, inactive) is not watched.
	// Default 60s.
	RTPTimeout time.Duration `yaml:"rtp_timeout"`
	// SessionExpires is the session interval the gateway asks of a trunk
	// that supports SIP session timers (RFC 4028): the session is
	// refreshed (UPDATE or re-INVITE) every half of it by whichever side
	// is the refresher, and ended with BYE when a refresh is missed. A
	// trunk's own Session-Expires is honoured down to the minimum of 90 s
	// (Min-SE). Default 30m.
	SessionExpires time.Duration `yaml:"session_expires"`
	// TLS: optional certificate and key for SIP over TLS.
	TLS TLS `yaml:"tls"`
}

// Batch is sip.rtp_batch, or its default when unset.
func (s SIP) Batch() time.Duration {
	if s.RTPBatch == nil {
		return DefaultRTPBatch
	}
	return *s.RTPBatch
}

// Trunk is one SIP trunk.
type Trunk struct {
	// Name identifies the trunk, e.g. "12366".
	Name string `yaml:"name"`
	// Sources are the addresses or CIDRs calls may come from.
	Sources []string `yaml:"sources"`
	// Username and Password, when set, require digest auth on INVITEs.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Routes maps a called number (the request-URI user) to a queue; "*"
	// matches any number.
	Routes map[string]string `yaml:"routes"`
	// Transfer is the SIP URI that out-of-scope callers are sent back to
	// (P1, P4), e.g. sip:12366@trunk.
	Transfer string `yaml:"transfer"`
}

// Registrar configures softphone registration.
type Registrar struct {
	// Realm of the digest challenge.
	Realm string `yaml:"realm"`
	// MinExpires and MaxExpires bound registration lifetimes.
	MinExpires time.Duration `yaml:"min_expires"`
	MaxExpires time.Duration `yaml:"max_expires"`
	// NonceLifetime: older nonces get stale=true.
	NonceLifetime time.Duration `yaml:"nonce_lifetime"`
	// FailureLimit failed attempts from one source within FailureWindow
	// ban it for BanTime; configured trunk sources are exempt.
	FailureLimit  int           `yaml:"failure_limit"`
	FailureWindow time.Duration `yaml:"failure_window"`
	BanTime       time.Duration `yaml:"ban_time"`
	// RegisterRate and RegisterBurst are the per-source token bucket on
	// REGISTERs (requests per second, burst); trunk sources are exempt.
	RegisterRate  float64 `yaml:"register_rate"`
	RegisterBurst int     `yaml:"register_burst"`
	// KeepAlive is how often each binding gets an OPTIONS (a binding that
	// misses three in a row is dropped); read at start.
	KeepAlive time.Duration `yaml:"keepalive"`
	// MD5OnlyUserAgents are User-Agent prefixes of phones that fail on a
	// SHA-256 challenge (RFC 8760) and get the MD5 one alone; unset keeps
	// the built-in list (old baresip, SIPp).
	MD5OnlyUserAgents []string `yaml:"md5_only_user_agents"`
}

// TLS names a certificate for SIP over TLS.
type TLS struct {
	Listen string `yaml:"listen"`
	Cert   string `yaml:"cert"`
	Key    string `yaml:"key"`
}
