// Package sla holds the desk's rules as code: the service-hours calendar and
// working-day arithmetic (M1, M3), the metric definitions (P2, P3, C2), the
// monthly report figures (R2), and the quarterly score and fee (R3, R4).
//
// It does no I/O. The timers that enforce the rules live in the router's
// own timer heap (package queue); this package says what the numbers mean.
package sla

import (
	"fmt"
	"time"

	"github.com/taxline/taxline/config"
)

// date is a civil date in the calendar's location.
type date struct {
	y int
	m time.Month
	d int
}

func dateOf(t time.Time) date {
	y, m, d := t.Date()
	return date{y, m, d}
}

// Calendar knows which days are public holidays and which weekend days are
// make-up working days (调休上班). It answers two different questions that
// must not be confused (RULES.md, "2026 calendar facts"):
//   - WorkingDay: Mon–Fri, minus holidays, plus make-up days (M3, V2);
//   - Schedule.Open: the service-hours window of a queue (M1), which also
//     covers Saturdays.
type Calendar struct {
	loc      *time.Location
	holidays map[date]bool
	workdays map[date]bool
}

// NewCalendar builds a calendar from YYYY-MM-DD lists, read in loc.
func NewCalendar(loc *time.Location, holidays, workdays []string) (*Calendar, error) {
	if loc == nil {
		return nil, fmt.Errorf("sla: calendar needs a location")
	}
	c := &Calendar{loc: loc, holidays: map[date]bool{}, workdays: map[date]bool{}}
	for _, set := range []struct {
		days []string
		m    map[date]bool
	}{{holidays, c.holidays}, {workdays, c.workdays}} {
		for _, s := range set.days {
			t, err := time.ParseInLocation(time.DateOnly, s, loc)
			if err != nil {
				return nil, fmt.Errorf("sla: calendar date %q: %w", s, err)
			}
			set.m[dateOf(t)] = true
		}
	}
	for d := range c.holidays {
		if c.workdays[d] {
			return nil, fmt.Errorf("sla: %04d-%02d-%02d is both a holiday and a make-up working day", d.y, d.m, d.d)
		}
	}
	return c, nil
}

// CalendarFromConfig builds the calendar of a loaded config.
func CalendarFromConfig(c *config.Config) (*Calendar, error) {
	loc := c.Location
	if loc == nil {
		loc = time.UTC
	}
	return NewCalendar(loc, c.Calendar.Holidays, c.Calendar.Workdays)
}

// Location is the time zone the calendar counts days in.
func (c *Calendar) Location() *time.Location { return c.loc }

// Holiday reports whether t falls on a public holiday.
func (c *Calendar) Holiday(t time.Time) bool { return c.holidays[dateOf(t.In(c.loc))] }

// MakeupDay reports whether t falls on a weekend day worked in exchange
// for a holiday.
func (c *Calendar) MakeupDay(t time.Time) bool { return c.workdays[dateOf(t.In(c.loc))] }

// WorkingDay reports whether t falls on a working day: Monday to Friday,
// minus public holidays, plus make-up days.
func (c *Calendar) WorkingDay(t time.Time) bool {
	t = t.In(c.loc)
	d := dateOf(t)
	if c.workdays[d] {
		return true
	}
	if c.holidays[d] {
		return false
	}
	wd := t.Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// WorkingDaysAfter returns the deadline for "within n working days" of t
// (M3): the end of the n-th working day after the day t falls on, returned
// as the midnight that starts the following day in the calendar's zone.
//
// Counting starts the next day, whatever the hour and whether or not the
// day t falls on is itself a working day, so a message left on Saturday
// evening with n = 1 is due by the end of Monday, one left on Monday
// morning by the end of Tuesday, and one left on the make-up Saturday
// 2026-02-14 by the end of Tuesday 2026-02-24 (the first working day after
// the Spring Festival). Work done strictly before the returned instant is
// on time. n < 1 is treated as 1.
//
// Days of a year the calendar has no file for count as plain weekdays and
// weekends: load next year's calendar before its first deadline.
func (c *Calendar) WorkingDaysAfter(t time.Time, n int) time.Time {
	if n < 1 {
		n = 1
	}
	t = t.In(c.loc)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, c.loc)
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if c.WorkingDay(day) {
			n--
		}
	}
	return day.AddDate(0, 0, 1)
}

// window is an opening window in minutes after midnight; to is exclusive.
type window struct{ from, to int }

// Schedule is one queue's service hours (M1, C1): weekly windows on the
// calendar. On a public holiday it is closed; on a make-up working day it
// opens with Monday's windows (the day being worked "as" a weekday), unless
// the schedule ignores holidays.
type Schedule struct {
	always bool
	ignore bool
	weekly [7][]window
	cal    *Calendar
}

// NewSchedule builds a schedule from config.
func NewSchedule(h config.Hours, cal *Calendar) (*Schedule, error) {
	if cal == nil && !h.Always {
		return nil, fmt.Errorf("sla: a weekly schedule needs a calendar")
	}
	s := &Schedule{always: h.Always, ignore: h.Holidays == "ignore", cal: cal}
	for _, w := range h.Weekly {
		from, err := minutes(w.From)
		if err != nil {
			return nil, err
		}
		to, err := minutes(w.To)
		if err != nil {
			return nil, err
		}
		if from >= to {
			return nil, fmt.Errorf("sla: window %s–%s ends before it starts", w.From, w.To)
		}
		for _, d := range w.Days {
			wd, ok := config.DayOfWeek(d)
			if !ok {
				return nil, fmt.Errorf("sla: unknown day %q", d)
			}
			s.weekly[wd] = append(s.weekly[wd], window{from, to})
		}
	}
	return s, nil
}

func minutes(hhmm string) (int, error) {
	var h, m int
	var rest string
	n, _ := fmt.Sscanf(hhmm, "%d:%d%s", &h, &m, &rest)
	if n != 2 || h < 0 || h > 24 || m < 0 || m > 59 || h == 24 && m != 0 {
		return 0, fmt.Errorf("sla: bad time %q", hhmm)
	}
	return h*60 + m, nil
}

// Open reports whether the schedule is open at t.
func (s *Schedule) Open(t time.Time) bool {
	if s.always {
		return true
	}
	t = t.In(s.cal.loc)
	wd := t.Weekday()
	if !s.ignore {
		switch {
		case s.cal.Holiday(t):
			return false
		case s.cal.MakeupDay(t) && len(s.weekly[wd]) == 0:
			wd = time.Monday
		}
	}
	m := t.Hour()*60 + t.Minute()
	for _, w := range s.weekly[wd] {
		if m >= w.from && m < w.to {
			return true
		}
	}
	return false
}

// NextOpen returns the first minute at or after t when the schedule is
// open, looking at most 31 days ahead; the zero time if it never opens.
func (s *Schedule) NextOpen(t time.Time) time.Time {
	if s.Open(t) {
		return t
	}
	t = t.In(s.cal.loc).Truncate(time.Minute).Add(time.Minute)
	for end := t.AddDate(0, 0, 31); t.Before(end); t = t.Add(time.Minute) {
		if s.Open(t) {
			return t
		}
	}
	return time.Time{}
}
