package main

import (
	"bytes"
	"strconv"
)

// commandSplitter cuts the bytes a client sends into commands, RESP arrays
// of bulk strings, across reads. Once it meets anything else it stops and
// returns nothing more: the harness's Stores send only arrays.
type commandSplitter struct {
	buf    []byte
	broken bool
}

// feed adds b and returns the commands it completed. Their arguments are
// valid until the next feed.
func (s *commandSplitter) feed(b []byte) [][][]byte {
	if s.broken {
		return nil
	}
	s.buf = append(s.buf, b...)
	var out [][][]byte
	i := 0
	for i < len(s.buf) {
		args, n, ok := parseArray(s.buf[i:])
		if !ok {
			s.broken = true
			s.buf = nil
			return out
		}
		if n == 0 {
			break // incomplete
		}
		out = append(out, args)
		i += n
	}
	// Keep the rest; the commands returned still point into the old buffer.
	s.buf = append([]byte(nil), s.buf[i:]...)
	return out
}

// parseArray reads one array of bulk strings from b: its arguments and
// length, a length of 0 when b holds only part of it, and false when b
// does not start with one.
func parseArray(b []byte) (args [][]byte, n int, ok bool) {
	count, i, ok := parseHeader(b, '*')
	if !ok || i == 0 {
		return nil, 0, ok
	}
	args = make([][]byte, 0, count)
	for range count {
		size, j, ok := parseHeader(b[i:], '$')
		if !ok || j == 0 {
			return nil, 0, ok
		}
		i += j
		if len(b) < i+size+2 {
			return nil, 0, true
		}
		args = append(args, b[i:i+size])
		i += size + 2
	}
	return args, i, true
}

// parseHeader reads "<kind><int>\r\n" from b: the int and the header's
// length, 0 when b ends first.
func parseHeader(b []byte, kind byte) (v, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, true
	}
	if b[0] != kind {
		return 0, 0, false
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		return 0, 0, len(b) < 24
	}
	v, err := strconv.Atoi(string(b[1:end]))
	if err != nil || v < 0 {
		return 0, 0, false
	}
	return v, end + 2, true
}
