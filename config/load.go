package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Problem is one thing wrong with a config file, with where it is.
type Problem struct {
	File string
	Line int // 0 when the position is not known
	Msg  string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// Error lists every problem found in a config file.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads, decodes, completes and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes data as the config file name. Unknown keys, type errors and
// failed cross-field checks are all reported as *Error with line numbers.
func Parse(name string, data []byte) (*Config, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, &Error{Problems: []Problem{yamlProblem(name, err)}}
	}
	var c Config
	if err := decodeStrict(data, &c); err != nil {
		p := yamlProblem(name, err)
		if p.Line == 0 {
			p.Line = lineOfValueIn(file, err.Error())
		}
		return nil, &Error{Problems: []Problem{p}}
	}
	c.Path = name
	c.SetDefaults()
	probs := c.validate()
	if len(probs) == 0 {
		if err := c.loadCalendars(); err != nil {
			probs = append(probs, fieldProblem{"calendar.files", err.Error()})
		}
	}
	if len(probs) > 0 {
		out := make([]Problem, len(probs))
		for i, p := range probs {
			out[i] = Problem{File: name, Line: lineOf(file, p.path), Msg: p.path + ": " + p.msg}
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
		return nil, &Error{Problems: out}
	}
	return &c, nil
}

// decodeStrict decodes data into v, refusing unknown keys. The YAML
// decoder has been seen to panic on some malformed input (an empty tag,
// found by FuzzParse); a bad file must be refused, never crash the process
// that is reloading it, so a panic becomes an error.
func decodeStrict(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML decoder failed on this file (%v)", r)
		}
	}()
	return yaml.UnmarshalWithOptions(data, v, yaml.Strict())
}

// yamlProblem turns a decoder error into a Problem with its line.
func yamlProblem(name string, err error) Problem {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
		return Problem{File: name, Line: line, Msg: ye.GetMessage()}
	}
	return Problem{File: name, Msg: err.Error()}
}

// lineOf finds the line of a dotted key path such as "queues[1].overflow",
// falling back to the nearest parent that exists in the file.
func lineOf(file *ast.File, path string) int {
	for path != "" {
		if p, err := yaml.PathString("$." + path); err == nil {
			if n, err := p.FilterFile(file); err == nil && n != nil {
				if tk := n.GetToken(); tk != nil && tk.Position != nil {
					line := tk.Position.Line
					// A mapping value's token is the value; report the key's line.
					return line
				}
			}
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 1
}

// quoted finds the value a conversion error quotes, as time.ParseDuration's
// `time: invalid duration "soon"` does.
var quoted = regexp.MustCompile(`"([^"]*)"`)

// lineOfValueIn locates the scalar that a plain conversion error (one the
// YAML decoder did not attach a position to) complains about.
func lineOfValueIn(file *ast.File, msg string) int {
	m := quoted.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	line := 0
	for _, doc := range file.Docs {
		ast.Walk(visitorFunc(func(n ast.Node) bool {
			if line != 0 {
				return false
			}
			if s, ok := n.(ast.ScalarNode); ok && fmt.Sprint(s.GetValue()) == m[1] {
				line = n.GetToken().Position.Line
				return false
			}
			return true
		}), doc)
	}
	return line
}

type visitorFunc func(ast.Node) bool

func (f visitorFunc) Visit(n ast.Node) ast.Visitor {
	if f(n) {
		return f
	}
	return nil
}

// loadCalendars reads the calendar files into Calendar.Holidays and
// Calendar.Workdays.
func (c *Config) loadCalendars() error {
	for _, f := range c.Calendar.Files {
		var data []byte
		var err error
		if year, ok := strings.CutPrefix(f, "embedded:"); ok {
			data, err = embeddedCalendar(year)
		} else {
			p := f
			if !filepath.IsAbs(p) && c.Path != "" {
				p = filepath.Join(filepath.Dir(c.Path), p)
			}
			data, err = os.ReadFile(p)
		}
		if err != nil {
			return err
		}
		var cf CalendarFile
		if err := decodeStrict(data, &cf); err != nil {
			p := yamlProblem(f, err)
			return fmt.Errorf("%s:%d: %s", p.File, p.Line, p.Msg)
		}
		for _, d := range append(append([]string(nil), cf.Holidays...), cf.Workdays...) {
			if _, err := parseDate(d); err != nil {
				return fmt.Errorf("%s: %v", f, err)
			}
		}
		c.Calendar.Holidays = append(c.Calendar.Holidays, cf.Holidays...)
		c.Calendar.Workdays = append(c.Calendar.Workdays, cf.Workdays...)
	}
	return nil
}
