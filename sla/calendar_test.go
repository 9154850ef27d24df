package sla_test

import (
	"testing"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
	"github.com/taxline/taxline/sla"
)

// demo loads the embedded demo config, its 2026 calendar and the hotline
// schedule (M1).
func demo(t *testing.T) (*config.Config, *sla.Calendar, *sla.Schedule) {
	t.Helper()
	cfg, err := config.Parse("demo.yaml", configs.Demo)
	if err != nil {
		t.Fatalf("parse demo config: %v", err)
	}
	cal, err := sla.CalendarFromConfig(cfg)
	if err != nil {
		t.Fatalf("calendar: %v", err)
	}
	h, ok := cfg.Hours["hotline"]
	if !ok {
		t.Fatal("demo config has no hotline hours")
	}
	sched, err := sla.NewSchedule(h, cal)
	if err != nil {
		t.Fatalf("schedule: %v", err)
	}
	return cfg, cal, sched
}

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// at parses "2006-01-02 15:04[:05]" in Asia/Shanghai.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	for _, layout := range []string{time.DateTime, "2006-01-02 15:04", time.DateOnly} {
		if v, err := time.ParseInLocation(layout, s, shanghai); err == nil {
			return v
		}
	}
	t.Fatalf("bad test time %q", s)
	return time.Time{}
}

func TestWorkingDay2026(t *testing.T) {
	_, cal, _ := demo(t)
	for _, tc := range []struct {
		day  string
		want bool
		why  string
	}{
		{"2026-01-01", false, "New Year holiday (Thu)"},
		{"2026-01-03", false, "holiday on a Saturday"},
		{"2026-01-04", true, "make-up working day (Sun)"},
		{"2026-01-05", true, "ordinary Monday"},
		{"2026-02-13", true, "ordinary Friday"},
		{"2026-02-14", true, "make-up working day (Sat)"},
		{"2026-02-16", false, "Spring Festival (Mon)"},
		{"2026-02-23", false, "last Spring Festival day (Mon)"},
		{"2026-02-24", true, "first day back (Tue)"},
		{"2026-02-28", true, "make-up working day (Sat)"},
		{"2026-03-07", false, "ordinary Saturday"},
		{"2026-03-08", false, "ordinary Sunday"},
		{"2026-05-09", true, "make-up working day (Sat)"},
		{"2026-06-19", false, "Dragon Boat (Fri)"},
		{"2026-09-20", true, "make-up working day (Sun)"},
		{"2026-09-25", false, "Mid-Autumn (Fri)"},
		{"2026-10-07", false, "National Day (Wed)"},
		{"2026-10-10", true, "make-up working day (Sat)"},
	} {
		if got := cal.WorkingDay(at(t, tc.day+" 12:00")); got != tc.want {
			t.Errorf("WorkingDay(%s) = %v, want %v (%s)", tc.day, got, tc.want, tc.why)
		}
	}
}

func TestWorkingDaysAfter2026(t *testing.T) {
	_, cal, _ := demo(t)
	for _, tc := range []struct {
		name string
		left string
		n    int
		want string // the instant the deadline ends: midnight after the n-th working day
	}{
		{"make-up Saturday before Spring Festival, ack", "2026-02-14 20:00", 1, "2026-02-25 00:00"},
		{"make-up Saturday before Spring Festival, answer", "2026-02-14 20:00", 2, "2026-02-26 00:00"},
		{"during Spring Festival, ack", "2026-02-18 10:00", 1, "2026-02-25 00:00"},
		{"during Spring Festival, answer", "2026-02-18 10:00", 2, "2026-02-26 00:00"},
		{"last Spring Festival day, late", "2026-02-23 23:59:59", 1, "2026-02-25 00:00"},
		{"holiday Saturday before a make-up Sunday", "2026-01-03 15:00", 1, "2026-01-05 00:00"},
		{"holiday Saturday, answer", "2026-01-03 15:00", 2, "2026-01-06 00:00"},
		{"New Year's Day", "2026-01-01 09:00", 1, "2026-01-05 00:00"},
		{"ordinary Saturday evening", "2026-03-07 20:00", 1, "2026-03-10 00:00"},
		{"ordinary Saturday evening, answer", "2026-03-07 20:00", 2, "2026-03-11 00:00"},
		{"ordinary Sunday", "2026-03-08 10:00", 1, "2026-03-10 00:00"},
		{"ordinary Monday morning", "2026-03-09 08:00", 1, "2026-03-11 00:00"},
		{"ordinary Friday evening", "2026-03-13 21:30", 1, "2026-03-17 00:00"},
		{"Thursday before Mid-Autumn", "2026-09-24 21:30", 1, "2026-09-29 00:00"},
		{"Mid-Autumn Friday", "2026-09-25 10:00", 1, "2026-09-29 00:00"},
		{"Mid-Autumn Friday, answer", "2026-09-25 10:00", 2, "2026-09-30 00:00"},
		{"Saturday before make-up Sunday", "2026-09-19 20:00", 1, "2026-09-21 00:00"},
		{"eve of National Day", "2026-09-30 15:00", 1, "2026-10-09 00:00"},
		{"eve of National Day, answer", "2026-09-30 15:00", 2, "2026-10-10 00:00"},
		{"Friday before make-up Saturday", "2026-10-09 18:00", 1, "2026-10-11 00:00"},
		{"n below 1 counts as 1", "2026-03-09 08:00", 0, "2026-03-11 00:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cal.WorkingDaysAfter(at(t, tc.left), tc.n)
			if want := at(t, tc.want); !got.Equal(want) {
				t.Errorf("WorkingDaysAfter(%s, %d) = %s, want %s", tc.left, tc.n, got.In(shanghai), want)
			}
			if got.Location() != cal.Location() {
				t.Errorf("deadline location = %v, want the calendar's", got.Location())
			}
		})
	}
}

// The day is the desk's day, not the caller's: 2026-03-09 16:30 UTC is
// already Tuesday 00:30 in Shanghai, so the count starts on Wednesday.
func TestWorkingDaysAfterCountsInCalendarZone(t *testing.T) {
	_, cal, _ := demo(t)
	left := time.Date(2026, 3, 9, 16, 30, 0, 0, time.UTC)
	if got, want := cal.WorkingDaysAfter(left, 1), at(t, "2026-03-12 00:00"); !got.Equal(want) {
		t.Errorf("got %s, want %s", got.In(shanghai), want)
	}
}

func TestHotlineOpen2026(t *testing.T) {
	_, _, hotline := demo(t)
	for _, tc := range []struct {
		at   string
		want bool
		why  string
	}{
		{"2026-03-09 08:29", false, "Monday before opening"},
		{"2026-03-09 08:29:59", false, "Monday, a second before opening"},
		{"2026-03-09 08:30", true, "Monday at opening"},
		{"2026-03-09 12:00", true, "Monday noon"},
		{"2026-03-09 20:59", true, "Monday last minute"},
		{"2026-03-09 20:59:59", true, "Monday last second"},
		{"2026-03-09 21:00", false, "Monday at closing"},
		{"2026-03-09 00:00", false, "Monday midnight"},
		{"2026-03-07 08:30", true, "ordinary Saturday opening"},
		{"2026-03-07 20:59", true, "ordinary Saturday last minute"},
		{"2026-03-07 21:00", false, "ordinary Saturday closing"},
		{"2026-03-08 10:00", false, "ordinary Sunday"},
		{"2026-01-01 10:00", false, "New Year holiday (Thu)"},
		{"2026-01-03 10:00", false, "holiday Saturday"},
		{"2026-01-04 10:00", true, "make-up Sunday"},
		{"2026-02-14 20:00", true, "make-up Saturday evening"},
		{"2026-02-18 10:00", false, "Spring Festival Wednesday"},
		{"2026-02-24 08:30", true, "first day back"},
		{"2026-09-20 08:29", false, "make-up Sunday before opening"},
		{"2026-09-20 08:30", true, "make-up Sunday opening"},
		{"2026-09-20 20:59", true, "make-up Sunday last minute"},
		{"2026-09-20 21:00", false, "make-up Sunday closing"},
		{"2026-09-25 10:00", false, "Mid-Autumn Friday"},
		{"2026-10-10 10:00", true, "make-up Saturday"},
	} {
		if got := hotline.Open(at(t, tc.at)); got != tc.want {
			t.Errorf("Open(%s) = %v, want %v (%s)", tc.at, got, tc.want, tc.why)
		}
	}
	// The same instant given in UTC: Monday 2026-03-09 08:30 Shanghai.
	if !hotline.Open(time.Date(2026, 3, 9, 0, 30, 0, 0, time.UTC)) {
		t.Error("Open must judge a UTC instant in the calendar's zone")
	}
}

func TestHotlineNextOpen2026(t *testing.T) {
	_, _, hotline := demo(t)
	for _, tc := range []struct{ from, want string }{
		{"2026-03-09 10:00", "2026-03-09 10:00"}, // open now
		{"2026-03-09 06:00", "2026-03-09 08:30"},
		{"2026-03-09 08:29:30", "2026-03-09 08:30"},
		{"2026-03-07 21:00", "2026-03-09 08:30"}, // Saturday night → Monday
		{"2026-02-14 21:00", "2026-02-24 08:30"}, // make-up Saturday → after Spring Festival
		{"2026-09-19 21:00", "2026-09-20 08:30"}, // → make-up Sunday
		{"2026-09-24 21:00", "2026-09-28 08:30"}, // Mid-Autumn
		{"2026-09-30 21:00", "2026-10-08 08:30"}, // National Day
	} {
		if got, want := hotline.NextOpen(at(t, tc.from)), at(t, tc.want); !got.Equal(want) {
			t.Errorf("NextOpen(%s) = %s, want %s", tc.from, got.In(shanghai), want)
		}
	}
}

func TestScheduleVariants(t *testing.T) {
	_, cal, _ := demo(t)
	weekdays := []config.Window{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "09:00", To: "17:00"}}

	always, err := sla.NewSchedule(config.Hours{Always: true}, cal)
	if err != nil {
		t.Fatal(err)
	}
	office, err := sla.NewSchedule(config.Hours{Weekly: weekdays, Holidays: "closed"}, cal)
	if err != nil {
		t.Fatal(err)
	}
	ignore, err := sla.NewSchedule(config.Hours{Weekly: weekdays, Holidays: "ignore"}, cal)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    *sla.Schedule
		at   string
		want bool
	}{
		{"always: holiday night", always, "2026-02-17 03:00", true},
		{"always: ordinary Sunday", always, "2026-03-08 23:59", true},
		{"office: make-up Saturday uses Monday's window", office, "2026-02-14 09:00", true},
		{"office: make-up Saturday after hours", office, "2026-02-14 17:00", false},
		{"office: holiday Friday", office, "2026-09-25 10:00", false},
		{"ignore: holiday Friday is a Friday", ignore, "2026-09-25 10:00", true},
		{"ignore: make-up Sunday is a Sunday", ignore, "2026-09-20 10:00", false},
	} {
		if got := tc.s.Open(at(t, tc.at)); got != tc.want {
			t.Errorf("%s: Open(%s) = %v, want %v", tc.name, tc.at, got, tc.want)
		}
	}
}

func TestNewScheduleErrors(t *testing.T) {
	_, cal, _ := demo(t)
	for _, h := range []config.Hours{
		{Weekly: []config.Window{{Days: []string{"mon"}, From: "8h", To: "21:00"}}},
		{Weekly: []config.Window{{Days: []string{"mon"}, From: "08:30", To: "25:00"}}},
		{Weekly: []config.Window{{Days: []string{"monday"}, From: "08:30", To: "21:00"}}},
		{Weekly: []config.Window{{Days: []string{"mon"}, From: "08:30", To: "24:30"}}},
		{Weekly: []config.Window{{Days: []string{"mon"}, From: "08:30", To: "21:00x"}}},
		{Weekly: []config.Window{{Days: []string{"mon"}, From: "21:00", To: "08:30"}}},
	} {
		if _, err := sla.NewSchedule(h, cal); err == nil {
			t.Errorf("NewSchedule(%+v) accepted a bad schedule", h)
		}
	}
	if _, err := sla.NewSchedule(config.Hours{Weekly: []config.Window{{Days: []string{"mon"}, From: "08:30", To: "21:00"}}}, nil); err == nil {
		t.Error("a weekly schedule without a calendar was accepted")
	}
	s, err := sla.NewSchedule(config.Hours{Weekly: []config.Window{{Days: []string{"sun"}, From: "00:00", To: "24:00"}}}, cal)
	if err != nil {
		t.Fatalf("a whole-day window was refused: %v", err)
	}
	if !s.Open(at(t, "2026-03-08 23:59:59")) {
		t.Error("a 00:00–24:00 window is closed at 23:59:59")
	}
}

func TestNewCalendarErrors(t *testing.T) {
	if _, err := sla.NewCalendar(nil, nil, nil); err == nil {
		t.Error("nil location accepted")
	}
	if _, err := sla.NewCalendar(shanghai, []string{"2026-13-01"}, nil); err == nil {
		t.Error("bad date accepted")
	}
	if _, err := sla.NewCalendar(shanghai, []string{"2026-02-14"}, []string{"2026-02-14"}); err == nil {
		t.Error("a day both holiday and make-up day accepted")
	}
}
