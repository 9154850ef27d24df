package chat

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/taxline/taxline/interaction"
)

// Version is the protocol version every frame carries in "v". A frame with
// another version is refused (close 1003).
const Version = 1

// Frame is one WebSocket text message, in either direction, on either
// socket. Type says which fields are meaningful; docs/CHAT.md lists every
// type with its fields. Unused fields are omitted on the wire.
type Frame struct {
	V    int    `json:"v"`
	Type string `json:"type"`

	// Chat is the chat (interaction) id; on the agent socket it says which
	// of the agent's chats a frame is about.
	Chat interaction.ID `json:"chat,omitempty"`
	// Token is the session token (taxpayer resume, agent re-login).
	Token string `json:"token,omitempty"`
	// LastSeq is the highest message sequence number the client has seen.
	LastSeq uint64 `json:"last_seq,omitempty"`

	// Message fields (type "msg", "send", "ack").
	Seq      uint64 `json:"seq,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	From     string `json:"from,omitempty"` // taxpayer, agent, system
	Kind     string `json:"kind,omitempty"` // text, image, system, choice
	Text     string `json:"text,omitempty"`
	// Image is a data URL: data:image/png;base64,....
	Image string `json:"image,omitempty"`
	// At is milliseconds since the Unix epoch.
	At int64 `json:"at,omitempty"`

	// Open and leave_message fields.
	Topic    string    `json:"topic,omitempty"`
	Taxpayer *Taxpayer `json:"taxpayer,omitempty"`

	// Typing.
	On bool `json:"on,omitempty"`
	// Choose (C4): true means "answer me later".
	Later bool `json:"later,omitempty"`
	// Rate.
	Score   int    `json:"score,omitempty"`
	Comment string `json:"comment,omitempty"`

	// State, position and estimated wait (seconds) of a chat.
	State    string `json:"state,omitempty"`
	Position int    `json:"position,omitempty"`
	Wait     int    `json:"wait,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Resumed  bool   `json:"resumed,omitempty"`
	// Rated: the taxpayer has already rated this chat.
	Rated bool `json:"rated,omitempty"`

	// Agent login, status and wrap-up.
	Agent       string `json:"agent,omitempty"`
	Password    string `json:"password,omitempty"`
	Name        string `json:"name,omitempty"`
	Status      string `json:"status,omitempty"`
	Target      string `json:"target,omitempty"`
	Disposition string `json:"disposition,omitempty"`
	ScopeReason string `json:"scope_reason,omitempty"`
	Queue       string `json:"queue,omitempty"`
	Timeout     int64  `json:"timeout_ms,omitempty"`
	AutoAccept  bool   `json:"auto_accept,omitempty"`
	MaxChats    int    `json:"max_chats,omitempty"`
	Chats       int    `json:"chats,omitempty"`

	// Ticket made from a web message or an "answer later" choice.
	Ticket *Ticket `json:"ticket,omitempty"`

	// Lists: replayed messages, topics, queues, hello data.
	Msgs   []Frame     `json:"msgs,omitempty"`
	Topics []TopicInfo `json:"topics,omitempty"`
	Queues []QueueInfo `json:"queues,omitempty"`
	Limits *LimitsInfo `json:"limits,omitempty"`
	Scope  []string    `json:"scope_reasons,omitempty"`
	Canned []string    `json:"canned,omitempty"`
	// CannedReplies are the configured canned replies, in logged_in.
	CannedReplies []CannedInfo `json:"canned_replies,omitempty"`
	Code          string       `json:"code,omitempty"`
}

// Taxpayer is what a taxpayer may tell about themselves when opening a chat.
type Taxpayer struct {
	// ID is the taxpayer identification number (纳税人识别号).
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Ticket is a created follow-up or message ticket as the taxpayer sees it.
type Ticket struct {
	ID       interaction.ID `json:"id"`
	AckBy    time.Time      `json:"ack_by"`
	AnswerBy time.Time      `json:"answer_by"`
}

// TopicInfo is one entry of the widget's topic picker.
type TopicInfo struct {
	Name  string `json:"name"`
	Label string `json:"label"`
}

// QueueInfo is one queue's live figures for the desk.
type QueueInfo struct {
	Name        string `json:"name"`
	Waiting     int    `json:"waiting"`
	LongestWait int    `json:"longest_wait"` // seconds
	Available   int    `json:"available"`
	ChatOpen    bool   `json:"chat_open"`
}

// CannedInfo is one canned reply (config chat.canned) as the desk shows
// it: Title in the picker, Text inserted into the reply box.
type CannedInfo struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// LimitsInfo tells the widget what it may send.
type LimitsInfo struct {
	MaxTextChars  int      `json:"max_text_chars"`
	MaxImageBytes int      `json:"max_image_bytes"`
	ImageTypes    []string `json:"image_types"`
}

// Frame types. Client → server on the taxpayer socket.
const (
	TypeOpen         = "open"
	TypeResume       = "resume"
	TypeSend         = "send"
	TypeTyping       = "typing"
	TypeChoose       = "choose"
	TypeEnd          = "end"
	TypeRate         = "rate"
	TypeLeaveMessage = "leave_message"
)

// Frame types. Client → server on the agent socket (besides send, typing
// and end above).
const (
	TypeLogin    = "login"
	TypeStatus   = "status"
	TypeAccept   = "accept"
	TypeDecline  = "decline"
	TypeTransfer = "transfer"
)

// Frame types. Server → client.
const (
	TypeHello          = "hello"
	TypeOpened         = "opened"
	TypeMsg            = "msg"
	TypeAck            = "ack"
	TypeState          = "state"
	TypeEnded          = "ended"
	TypeRated          = "rated"
	TypeAfterHours     = "after_hours"
	TypeTicket         = "ticket"
	TypeError          = "error"
	TypeHistory        = "history"
	TypeLoggedIn       = "logged_in"
	TypeOffer          = "offer"
	TypeOfferWithdrawn = "offer_withdrawn"
	TypeChatFrame      = "chat"
	TypePrompt         = "prompt"
	TypeTaxpayerLeft   = "taxpayer_left"
	TypeClosed         = "closed"
	TypeAgentState     = "agent"
	TypeQueues         = "queues"
)

// Message kinds.
const (
	KindText   = "text"
	KindImage  = "image"
	KindSystem = "system"
	KindChoice = "choice"
)

// Senders.
const (
	FromTaxpayer = "taxpayer"
	FromAgent    = "agent"
	FromSystem   = "system"
)

// errBadFrame is a frame that cannot be understood; the socket closes 1003.
var errBadFrame = errors.New("chat: bad frame")

// errBadUTF8 is a frame that is not valid UTF-8; the socket closes 1007.
var errBadUTF8 = errors.New("chat: frame is not valid UTF-8")

// decodeFrame parses one client frame and checks its version.
func decodeFrame(b []byte) (Frame, error) {
	var f Frame
	if !utf8.Valid(b) {
		return f, errBadUTF8
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("%w: %v", errBadFrame, err)
	}
	if f.V != Version {
		return f, fmt.Errorf("%w: unsupported version %d", errBadFrame, f.V)
	}
	if f.Type == "" {
		return f, fmt.Errorf("%w: no type", errBadFrame)
	}
	return f, nil
}

// encodeFrame serialises a server frame, stamping the version.
func encodeFrame(f Frame) []byte {
	f.V = Version
	b, err := json.Marshal(f)
	if err != nil {
		// Frame holds only strings, numbers and slices of itself: this
		// cannot fail.
		panic("chat: encode frame: " + err.Error())
	}
	return b
}

// parseImage checks a data URL against the allowed types and size and
// returns its MIME type and decoded size.
func parseImage(dataURL string, types []string, maxBytes int) (string, int, error) {
	rest, ok := strings.CutPrefix(dataURL, "data:")
	if !ok {
		return "", 0, errors.New("chat: image must be a data URL")
	}
	mime, b64, ok := strings.Cut(rest, ";base64,")
	if !ok {
		return "", 0, errors.New("chat: image must be base64")
	}
	allowed := false
	for _, t := range types {
		if t == mime {
			allowed = true
		}
	}
	if !allowed {
		return "", 0, fmt.Errorf("chat: image type %q not accepted", mime)
	}
	n := base64.StdEncoding.DecodedLen(len(b64))
	if n > maxBytes+2 {
		return "", 0, fmt.Errorf("chat: image larger than %d bytes", maxBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", 0, fmt.Errorf("chat: image: %w", err)
	}
	if len(raw) > maxBytes {
		return "", 0, fmt.Errorf("chat: image larger than %d bytes", maxBytes)
	}
	if !sniffImage(mime, raw) {
		return "", 0, fmt.Errorf("chat: image content is not %s", mime)
	}
	return mime, len(raw), nil
}

// sniffImage checks the magic bytes so a page cannot label any blob an image.
func sniffImage(mime string, b []byte) bool {
	switch mime {
	case "image/png":
		return len(b) > 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n"
	case "image/jpeg":
		return len(b) > 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff
	case "image/gif":
		return len(b) > 6 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a")
	case "image/webp":
		return len(b) > 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP"
	}
	return len(b) > 0
}
