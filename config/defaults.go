package config

import (
	"fmt"
	"time"

	"github.com/taxline/taxline/configs"
)

// SetDefaults fills every unset field with its default. Parse calls it;
// code that builds a Config by hand (tests, simulations) calls it too.
func (c *Config) SetDefaults() {
	s := &c.Server
	def(&s.HTTP, DefaultHTTP)
	def(&s.SIP, DefaultSIP)
	def(&s.Data, DefaultData)
	def(&s.Timezone, DefaultTimezone)
	def(&s.DrainTimeout, 30*time.Second)
	if loc, err := time.LoadLocation(s.Timezone); err == nil {
		c.Location = loc
	}

	if c.Hours == nil {
		c.Hours = map[string]Hours{}
	}
	if _, ok := c.Hours["always"]; !ok {
		c.Hours["always"] = Hours{Always: true}
	}
	for name, h := range c.Hours {
		def(&h.Holidays, "closed")
		c.Hours[name] = h
	}
	for i := range c.Queues {
		q := &c.Queues[i]
		def(&q.Strategy, "longest_idle")
		def(&q.ChatHours, "always")
		def(&q.Hours, "always")
		if q.JoinEmpty == nil {
			q.JoinEmpty = ptr(true)
		}
		def(&q.AnnounceInterval, 30*time.Second)
		if len(q.Channels) == 0 {
			q.Channels = []string{"phone", "chat"}
		}
	}
	for i := range c.Agents {
		a := &c.Agents[i]
		def(&a.MaxChats, 3)
		def(&a.Mixing, "call_blocks_chat")
	}

	p := &c.Phone
	def(&p.AnswerTarget, DefaultAnswerTarget)
	def(&p.RingTimeout, DefaultRingTimeout)
	def(&p.Retry, 5*time.Second)
	def(&p.AnswerRateTarget, DefaultAnswerRateTarget)
	def(&p.AnswerWithinTarget, DefaultAnswerWithinTarget)

	ch := &c.Chat
	def(&ch.FirstResponse, DefaultFirstResponse)
	def(&ch.AgentSilence, DefaultAgentSilence)
	def(&ch.CustomerSilenceReminder, DefaultCustomerSilenceReminder)
	def(&ch.CustomerSilenceClose, DefaultCustomerSilenceClose)
	def(&ch.OfferTimeout, DefaultFirstResponse)
	def(&ch.FollowUpWithin, DefaultAnswerWithin)
	m := &ch.Messages
	def(&m.Welcome, "您好，欢迎咨询上海网上办税技术服务，请描述您遇到的问题。")
	def(&m.Holding, "当前咨询人数较多，您前面还有 {position} 位，预计等待约 {wait} 分钟，请耐心等候。")
	def(&m.AgentSilence, "客服正在查询处理您的问题。请问您是继续等待，还是稍后由我们回复您？")
	def(&m.Reminder, "请问您还在吗？如还有问题请继续留言，否则本次会话将在稍后结束。")
	def(&m.Closing, "由于您长时间未回复，本次会话已结束。感谢您的咨询，如有需要欢迎再次联系。")
	def(&m.AfterHours, "当前不在服务时间，您可以留言，我们将在工作日内尽快回复您。")
	def(&m.FollowUpCreated, "好的，我们已记录您的问题，将在规定时间内回复您。")

	if len(ch.Topics) == 0 && len(c.Queues) > 0 {
		ch.Topics = []Topic{{Name: "general", Label: "网上办税软件咨询", Queue: c.Queues[0].Name}}
	}
	l := &ch.Limits
	def(&l.MaxFrameBytes, 4<<20)
	def(&l.MaxTextChars, 2000)
	def(&l.MaxImageBytes, 2<<20)
	if len(l.ImageTypes) == 0 {
		l.ImageTypes = []string{"image/png", "image/jpeg"}
	}
	def(&l.RatePerSecond, 5)
	def(&l.Burst, 20)
	def(&l.PingInterval, 25*time.Second)
	def(&l.PongTimeout, 60*time.Second)
	def(&l.SendQueue, 64)
	def(&l.ResumeWindow, 10*time.Minute)
	if len(ch.Canned) == 0 {
		ch.Canned = DefaultCanned()
	}
	for i := range ch.Canned {
		def(&ch.Canned[i].Title, firstRunes(ch.Canned[i].Text, 12))
	}
	def(&ch.DeskSession, 14*time.Hour)

	def(&c.Messages.AcknowledgeWithin, DefaultAcknowledgeWithin)
	def(&c.Messages.AnswerWithin, DefaultAnswerWithin)

	def(&c.Metrics.ShortAbandon, DefaultShortAbandon)
	if c.Metrics.ExcludeShortAbandons == nil {
		c.Metrics.ExcludeShortAbandons = ptr(true)
	}
	def(&c.Metrics.ServiceLevel, c.Phone.AnswerTarget)

	if len(c.ScopeReasons) == 0 {
		c.ScopeReasons = []string{"非网上办税软件问题", "税收政策咨询", "需到办税服务厅办理", "其他"}
	}
	def(&c.Retention.Years, DefaultRetention)

	sp := &c.SIP
	def(&sp.Registrar.Realm, "taxline")
	def(&sp.Registrar.MinExpires, 60*time.Second)
	def(&sp.Registrar.MaxExpires, time.Hour)
	def(&sp.Registrar.NonceLifetime, 5*time.Minute)
	def(&sp.Registrar.FailureLimit, 10)
	def(&sp.Registrar.FailureWindow, time.Minute)
	def(&sp.Registrar.BanTime, 10*time.Minute)
	def(&sp.Registrar.RegisterRate, 20)
	def(&sp.Registrar.RegisterBurst, 200)
	def(&sp.Registrar.KeepAlive, 30*time.Second)
	def(&sp.RTPPorts, "20000-29999")
	if sp.RTPBatch == nil {
		sp.RTPBatch = ptr(DefaultRTPBatch)
	}
	if len(sp.Codecs) == 0 {
		sp.Codecs = []string{"PCMA", "PCMU"}
	}
	def(&sp.VoicemailMax, 2*time.Minute)
	if sp.Survey == nil {
		sp.Survey = ptr(true)
	}
	def(&sp.SurveyTimeout, 10*time.Second)
	def(&sp.RTPTimeout, DefaultRTPTimeout)
	def(&sp.SessionExpires, DefaultSessionExpires)
}

// Bool reads an optional flag.
func Bool(b *bool) bool { return b != nil && *b }

func def[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

func ptr[T any](v T) *T { return &v }

// firstRunes returns the first n runes of s.
func firstRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

func embeddedCalendar(year string) ([]byte, error) {
	data, err := configs.Calendars.ReadFile("calendar-" + year + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no embedded calendar for %s", year)
	}
	return data, nil
}
