// Package doccheck finds the relative links of Markdown files that do not
// resolve: to a file or directory that does not exist, or to an anchor that
// no heading of the target file makes.
package doccheck

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Doc is what a Markdown file holds for the check: its links and the
// anchors its headings make.
type Doc struct {
	Links   []Link
	Anchors map[string]bool
}

// Link is one link target, and the line it is on.
type Link struct {
	Line   int
	Target string
}

var (
	inline    = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	reference = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	heading   = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	codeSpan  = regexp.MustCompile("`+[^`]*`+")
	linkText  = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

// Parse reads the links and heading anchors of Markdown text, leaving out
// fenced code blocks and code spans.
func Parse(text []byte) Doc {
	d := Doc{Anchors: map[string]bool{}}
	seen := map[string]int{}
	fence := ""
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if f := fenceOf(line); f != "" && (fence == "" || strings.HasPrefix(f, fence)) {
			if fence == "" {
				fence = f
			} else {
				fence = ""
			}
			continue
		}
		if fence != "" {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			a := Slug(m[1])
			if k := seen[a]; k > 0 {
				d.Anchors[a+"-"+strconv.Itoa(k)] = true
			} else {
				d.Anchors[a] = true
			}
			seen[a]++
		}
		plain := codeSpan.ReplaceAllString(line, "")
		for _, m := range inline.FindAllStringSubmatch(plain, -1) {
			d.Links = append(d.Links, Link{n, m[1]})
		}
		if m := reference.FindStringSubmatch(plain); m != nil {
			d.Links = append(d.Links, Link{n, m[1]})
		}
	}
	return d
}

func fenceOf(line string) string {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return ""
	}
	for _, c := range []string{"```", "~~~"} {
		if strings.HasPrefix(t, c) {
			return t[:len(t)-len(strings.TrimLeft(t, c[:1]))]
		}
	}
	return ""
}

// Slug returns the anchor GitHub makes for a heading's text: its words in
// lower case joined by hyphens, without punctuation, code marks or link
// targets.
func Slug(h string) string {
	h = linkText.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Check returns a line for each relative link in the Markdown file name
// that does not resolve. Links with a scheme (https:, mailto:) are not
// followed.
func Check(name string) ([]string, error) {
	text, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	d := Parse(text)
	var bad []string
	for _, l := range d.Links {
		if msg := resolve(name, d, l.Target); msg != "" {
			bad = append(bad, fmt.Sprintf("%s:%d: %s: %s", name, l.Line, l.Target, msg))
		}
	}
	return bad, nil
}

func resolve(name string, d Doc, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return err.Error()
	}
	if u.Scheme != "" || u.Host != "" {
		return ""
	}
	if u.Path == "" {
		if !d.Anchors[u.Fragment] {
			return "no heading makes this anchor"
		}
		return ""
	}
	if strings.HasPrefix(u.Path, "/") {
		return "a link from the root of the site does not resolve in a clone; make it relative"
	}
	path := filepath.Join(filepath.Dir(name), filepath.FromSlash(u.Path))
	st, err := os.Stat(path)
	if err != nil {
		return "no such file"
	}
	if u.Fragment == "" || st.IsDir() || !strings.HasSuffix(path, ".md") {
		return ""
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if !Parse(text).Anchors[u.Fragment] {
		return "no heading of " + u.Path + " makes this anchor"
	}
	return ""
}
