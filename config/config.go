// Package config is taxline's configuration: one plain struct decoded
// strictly from YAML (an unknown key is an error with its file and line),
// filled with the defaults of RULES.md, and validated across fields before
// anything uses it.
//
// Every number in RULES.md is a field here with the rule's default, so an
// admin can tune it and nothing in the code hard-codes it.
package config

import (
	"time"
)

// Defaults from RULES.md. Each names the rule it comes from.
const (
	DefaultFirstResponse           = 30 * time.Second // C2
	DefaultAgentSilence            = 2 * time.Minute  // C4
	DefaultCustomerSilenceReminder = 4 * time.Minute  // C5
	DefaultCustomerSilenceClose    = 2 * time.Minute  // C5 grace, not in the text
	DefaultAnswerTarget            = 60 * time.Second // P3
	DefaultAnswerRateTarget        = 0.90             // P2
	DefaultAnswerWithinTarget      = 0.80             // P3
	DefaultShortAbandon            = 5 * time.Second  // P2 exclusion
	DefaultRingTimeout             = 20 * time.Second
	DefaultAcknowledgeWithin       = 1 // M3, working days
	DefaultAnswerWithin            = 2 // M3, working days
	DefaultRetention               = 3 // S3, years
	DefaultHTTP                    = "127.0.0.1:8080"
	DefaultSIP                     = "127.0.0.1:5060"
	DefaultData                    = "./data"
	DefaultTimezone                = "Asia/Shanghai"
)

// Config is the whole configuration file.
type Config struct {
	// Server: listeners, data directory and shutdown.
	Server Server `yaml:"server"`
	// Auth: API bearer tokens and their roles.
	Auth Auth `yaml:"auth"`
	// Calendar: holidays and make-up working days, by year (M1, M3).
	Calendar Calendar `yaml:"calendar"`
	// Hours: named weekly service-hour schedules that queues refer to (M1, C1).
	Hours map[string]Hours `yaml:"hours"`
	// Queues: the ACD queues.
	Queues []Queue `yaml:"queues"`
	// Agents: who answers, with skills and capacity.
	Agents []Agent `yaml:"agents"`
	// Phone: the phone timing rules (P2, P3, ring timeout, autopause).
	Phone Phone `yaml:"phone"`
	// Chat: the chat timing rules (C2–C5) and limits.
	Chat Chat `yaml:"chat"`
	// Messages: ticket deadlines (M3).
	Messages Messages `yaml:"messages"`
	// Metrics: definitions that change how figures are computed (P2, P3).
	Metrics Metrics `yaml:"metrics"`
	// Dispositions: the configured out-of-scope reasons (P4).
	ScopeReasons []string `yaml:"scope_reasons"`
	// Retention: how long records and recordings are kept (S3).
	Retention Retention `yaml:"retention"`
	// SIP: trunks, registrar, media and prompts.
	SIP SIP `yaml:"sip"`

	// Path is the file the config came from ("" for the embedded default);
	// calendar files are resolved relative to its directory.
	Path string `yaml:"-"`
	// Location is Server.Timezone, loaded.
	Location *time.Location `yaml:"-"`
}

// Server holds listener addresses and process-level settings.
type Server struct {
	// HTTP is the address of the API, pages and WebSockets.
	HTTP string `yaml:"http"`
	// SIP is the SIP listen address, for UDP and TCP.
	SIP string `yaml:"sip"`
	// Data is the directory of the bbolt store and recordings.
	Data string `yaml:"data"`
	// Timezone is where the desk is; service hours and working days are
	// counted there.
	Timezone string `yaml:"timezone"`
	// DrainTimeout bounds how long SIGTERM waits for live interactions.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// CommitDelay is how long the store lets events that nobody waits on
	// (the router's and the gateways' records of what happened) gather
	// before one commit writes them all: fewer commits, each with its two
	// fsyncs, for an event becoming durable up to this much later. Unset:
	// the store's default (storage.DefaultEmitLinger, 20ms); 0s commits at
	// once; at most 1s.
	CommitDelay *time.Duration `yaml:"commit_delay"`
}

// EmitLinger is server.commit_delay as the store's EmitLinger option
// takes it: 0 (the store's default) when unset, negative (none) for 0s.
func (s Server) EmitLinger() time.Duration {
	switch {
	case s.CommitDelay == nil:
		return 0
	case *s.CommitDelay == 0:
		return -1
	}
	return *s.CommitDelay
}

// Auth configures API access.
type Auth struct {
	// Tokens are bearer tokens, stored as SHA-256 hex digests.
	Tokens []Token `yaml:"tokens"`
}

// Role is what a token may do.
type Role string

// Roles, from least to most privileged for the API (auditor reads
// everything but changes nothing).
const (
	RoleAgent      Role = "agent"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
	RoleAuditor    Role = "auditor"
)

// Token is one API credential.
type Token struct {
	// Name identifies the holder in logs and the audit trail.
	Name string `yaml:"name"`
	// Role is agent, supervisor, admin or auditor.
	Role Role `yaml:"role"`
	// SHA256 is the lower-case hex SHA-256 of the token.
	SHA256 string `yaml:"sha256"`
	// Agent binds an agent-role token to an agent id.
	Agent string `yaml:"agent"`
}

// Calendar lists non-weekly exceptions: public holidays and make-up working
// days (调休上班), as dates YYYY-MM-DD in Server.Timezone.
type Calendar struct {
	// Files are calendar files, one per year, relative to the config file;
	// "embedded:2026" names the one built into the binary.
	Files []string `yaml:"files"`
	// Holidays are extra public holidays, inline.
	Holidays []string `yaml:"holidays"`
	// Workdays are extra make-up working days, inline.
	Workdays []string `yaml:"workdays"`
}

// CalendarFile is the format of one calendar file.
type CalendarFile struct {
	Year     int      `yaml:"year"`
	Source   string   `yaml:"source"`
	Holidays []string `yaml:"holidays"`
	Workdays []string `yaml:"workdays"`
}

// Hours is a service-hours schedule.
type Hours struct {
	// Always means open around the clock, every day (C1).
	Always bool `yaml:"always"`
	// Weekly lists the open windows.
	Weekly []Window `yaml:"weekly"`
	// Holidays: "closed" (the default) closes on public holidays and opens
	// on make-up days with the window of MakeupAs; "ignore" follows Weekly
	// alone.
	Holidays string `yaml:"holidays"`
}

// Window is one weekly opening window.
type Window struct {
	// Days are mon, tue, wed, thu, fri, sat, sun.
	Days []string `yaml:"days"`
	// From and To are HH:MM in Server.Timezone; To is exclusive.
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Queue is one ACD queue.
type Queue struct {
	// Name identifies the queue.
	Name string `yaml:"name"`
	// Channels are the interaction kinds it takes: phone, chat.
	Channels []string `yaml:"channels"`
	// Strategy picks among free agents: longest_idle (default),
	// round_robin, fewest_handled, skill_level.
	Strategy string `yaml:"strategy"`
	// Skills are required of every agent who takes from this queue; an
	// interaction may require more.
	Skills []string `yaml:"skills"`
	// Hours names the phone service-hours schedule (M1).
	Hours string `yaml:"hours"`
	// ChatHours names the chat schedule (C1); default: always open.
	ChatHours string `yaml:"chat_hours"`
	// MaxLength is how many may wait at once; 0 means no limit.
	MaxLength int `yaml:"max_length"`
	// MaxWait is how long one may wait before overflow; 0 means no limit.
	MaxWait time.Duration `yaml:"max_wait"`
	// Overflow is where interactions go at MaxWait or MaxLength: another
	// queue's name, "voicemail" (leave a message) or "" (end with timeout).
	Overflow string `yaml:"overflow"`
	// JoinEmpty lets interactions join when no agent is logged in.
	JoinEmpty *bool `yaml:"join_empty"`
	// LeaveWhenEmpty ends waiting interactions when the last agent logs out.
	LeaveWhenEmpty bool `yaml:"leave_when_empty"`
	// WrapUp is the after-interaction work time before the next offer.
	WrapUp time.Duration `yaml:"wrapup"`
	// AnnounceInterval: how often a waiting caller hears position and
	// estimated wait (P5); a chat gets its holding message update (C3).
	AnnounceInterval time.Duration `yaml:"announce_interval"`
}

// Agent is one person who answers.
type Agent struct {
	// ID is the extension; the SIP user and the desk login.
	ID string `yaml:"id"`
	// Name is shown to supervisors (never to taxpayers).
	Name string `yaml:"name"`
	// Password is the SIP digest and desk password. Prefer PasswordFile.
	Password string `yaml:"password"`
	// Queues the agent serves.
	Queues []string `yaml:"queues"`
	// Skills with levels 1–10; skill_level routing prefers higher.
	Skills map[string]int `yaml:"skills"`
	// MaxChats is how many chats at once (default 3).
	MaxChats int `yaml:"max_chats"`
	// Mixing is the rule for calls and chats at once: call_blocks_chat
	// (default: on a call, no new chats; chats do not block calls),
	// exclusive (one kind at a time), or independent.
	Mixing string `yaml:"mixing"`
}

// Phone holds the phone rules.
type Phone struct {
	// AnswerTarget is the P3 answer target (60 s).
	AnswerTarget time.Duration `yaml:"answer_target"`
	// RingTimeout: ring one agent this long, then try the next.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// Retry is the pause before ringing again agents who all failed a
	// ring for the same call.
	Retry time.Duration `yaml:"retry"`
	// AutopauseAfter puts an agent on break after this many missed rings in
	// a row; 0 disables.
	AutopauseAfter int `yaml:"autopause_after"`
	// AnswerRateTarget is P2's 90 %.
	AnswerRateTarget float64 `yaml:"answer_rate_target"`
	// AnswerWithinTarget is P3's 80 %.
	AnswerWithinTarget float64 `yaml:"answer_within_target"`
}

// Chat holds the chat rules and limits.
type Chat struct {
	// FirstResponse is the C2 first-response target (30 s).
	FirstResponse time.Duration `yaml:"first_response"`
	// AgentSilence is C4's 2 min.
	AgentSilence time.Duration `yaml:"agent_silence"`
	// CustomerSilenceReminder is C5's 4 min.
	CustomerSilenceReminder time.Duration `yaml:"customer_silence_reminder"`
	// CustomerSilenceClose is C5's grace after the reminder (2 min).
	CustomerSilenceClose time.Duration `yaml:"customer_silence_close"`
	// OfferTimeout: an agent must accept an offered chat this fast.
	OfferTimeout time.Duration `yaml:"offer_timeout"`
	// AutoAccept connects offered chats without the agent clicking.
	AutoAccept bool `yaml:"auto_accept"`
	// FollowUpWithin is the deadline, in working days, of a follow-up
	// ticket made when the taxpayer chooses "answer me later" (C4).
	FollowUpWithin int `yaml:"follow_up_within"`
	// Messages are the texts the system sends (Simplified Chinese).
	Messages ChatMessages `yaml:"messages"`
	// Topics map what the taxpayer picks in the widget to a queue and
	// skills; the first is the default.
	Topics []Topic `yaml:"topics"`
	// Limits protect the WebSocket gateway.
	Limits ChatLimits `yaml:"limits"`
	// Canned are the desk's ready-made replies, sent to each desk at
	// login (default: DefaultCanned).
	Canned []CannedResponse `yaml:"canned"`
	// DeskSession is how long a desk token can log in again without the
	// password (default 14h: a working day and then some).
	DeskSession time.Duration `yaml:"desk_session"`
}

// CannedResponse is one ready-made reply: Title is what the desk's picker
// shows, Text what is inserted into the reply box.
type CannedResponse struct {
	Title string `yaml:"title"`
	Text  string `yaml:"text"`
}

// DefaultCanned returns the default canned replies (a new slice each call).
func DefaultCanned() []CannedResponse {
	return []CannedResponse{
		{Title: "问候", Text: "您好，请问有什么可以帮您？"},
		{Title: "索取信息", Text: "请您提供一下纳税人识别号和报错页面的截图。"},
		{Title: "请稍等", Text: "请稍等，我正在为您查询。"},
		{Title: "清除缓存", Text: "请您清除浏览器缓存后重新登录电子税务局再试一下。"},
		{Title: "还有问题吗", Text: "请问还有其他问题吗？"},
		{Title: "结束语", Text: "感谢您的咨询，祝您工作顺利！"},
	}
}

// Topic is one choice in the chat widget's topic list.
type Topic struct {
	Name   string   `yaml:"name"`
	Label  string   `yaml:"label"`
	Queue  string   `yaml:"queue"`
	Skills []string `yaml:"skills"`
}

// ChatLimits bound what one WebSocket connection may do.
type ChatLimits struct {
	// AllowedOrigins for /ws/chat and /ws/agent; empty allows same-origin
	// requests only.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxFrameBytes is the read limit of one frame.
	MaxFrameBytes int64 `yaml:"max_frame_bytes"`
	// MaxTextChars bounds one text message.
	MaxTextChars int `yaml:"max_text_chars"`
	// MaxImageBytes bounds one screenshot; ImageTypes are the MIME types
	// accepted.
	MaxImageBytes int      `yaml:"max_image_bytes"`
	ImageTypes    []string `yaml:"image_types"`
	// RatePerSecond and Burst limit frames per connection.
	RatePerSecond float64 `yaml:"rate_per_second"`
	Burst         int     `yaml:"burst"`
	// PingInterval and PongTimeout detect dead connections.
	PingInterval time.Duration `yaml:"ping_interval"`
	PongTimeout  time.Duration `yaml:"pong_timeout"`
	// SendQueue is how many frames may wait for a slow client before it
	// is dropped.
	SendQueue int `yaml:"send_queue"`
	// ResumeWindow is how long a dropped taxpayer connection can resume.
	ResumeWindow time.Duration `yaml:"resume_window"`
}

// ChatMessages are the system's chat texts. {position} and {wait} are
// replaced with the queue position and estimated wait in minutes.
type ChatMessages struct {
	Welcome         string `yaml:"welcome"`
	Holding         string `yaml:"holding"`
	AgentSilence    string `yaml:"agent_silence"`
	Reminder        string `yaml:"reminder"`
	Closing         string `yaml:"closing"`
	AfterHours      string `yaml:"after_hours"`
	FollowUpCreated string `yaml:"follow_up_created"`
}

// Messages holds ticket deadlines (M3).
type Messages struct {
	// AcknowledgeWithin: listen to or read within this many working days.
	AcknowledgeWithin int `yaml:"acknowledge_within"`
	// AnswerWithin: answer within this many working days.
	AnswerWithin int `yaml:"answer_within"`
}

// Metrics holds metric definitions.
type Metrics struct {
	// ShortAbandon: callers who hang up sooner than this are left out of
	// P2 and P3 when ExcludeShortAbandons is on.
	ShortAbandon time.Duration `yaml:"short_abandon"`
	// ExcludeShortAbandons removes short abandons from both numerator and
	// denominator (the usual 12366 practice).
	ExcludeShortAbandons *bool `yaml:"exclude_short_abandons"`
	// ServiceLevel is the threshold of the Asterisk-style SL and SL2
	// figures kept beside P3 for audit.
	ServiceLevel time.Duration `yaml:"service_level"`
}

// Retention holds the retention policy (S3).
type Retention struct {
	// Years records and recordings are kept.
	Years int `yaml:"years"`
}
