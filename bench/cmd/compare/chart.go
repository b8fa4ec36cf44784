package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// style is how one series is drawn: sesh in warm colours, its peers in cool
// ones, cached lookups dashed, redis-benchmark black and dotted.
type style struct {
	color color.Color
	glyph draw.GlyphDrawer
	dash  []vg.Length
}

func rgb(hex uint32) color.Color {
	return color.RGBA{uint8(hex >> 16), uint8(hex >> 8), uint8(hex), 0xff}
}

var (
	dashed = []vg.Length{vg.Points(7), vg.Points(4)}
	dotted = []vg.Length{vg.Points(2), vg.Points(3)}
)

var styles = map[string]style{
	"redigo":          {rgb(0x555555), draw.CircleGlyph{}, nil},
	"redigo+ctx":      {rgb(0xaaaaaa), draw.RingGlyph{}, nil},
	"redisc":          {rgb(0x555555), draw.CircleGlyph{}, nil},
	"go-redis":        {rgb(0x4e79a7), draw.SquareGlyph{}, nil},
	"rueidis":         {rgb(0x59a14f), draw.TriangleGlyph{}, nil},
	"rueidis+cache":   {rgb(0x59a14f), draw.PyramidGlyph{}, dashed},
	"scs":             {rgb(0xb07aa1), draw.BoxGlyph{}, nil},
	"sesh":            {rgb(0xe15759), draw.RingGlyph{}, nil},
	"sesh-nobatch":    {rgb(0xe15759), draw.SquareGlyph{}, dotted},
	"sesh+crypt":      {rgb(0xf28e2b), draw.CrossGlyph{}, nil},
	"sesh+cache":      {rgb(0xe15759), draw.PlusGlyph{}, dashed},
	"redis-benchmark": {rgb(0x000000), draw.BoxGlyph{}, dotted},
}

// Chart size, in pixels at 96 dpi.
const (
	chartDPI = 96
	chartW   = 1600
	chartH   = 720
)

func px(n float64) vg.Length { return vg.Length(n) * vg.Inch / chartDPI }

// chart renders ops/s against concurrency on log scales, mint and lookup
// side by side, with the legend to the right, as a PNG.
func (r *Report) chart() ([]byte, error) {
	legend := plot.NewLegend()
	legend.TextStyle.Font.Size = vg.Points(13)
	legend.Top, legend.Left = true, true
	legend.ThumbnailWidth = px(44)
	legend.Padding = px(6)

	titles := map[string]string{
		opMint:   "Mint: a new token with a 1h expiry",
		opLookup: fmt.Sprintf("Lookup: a token from %s live ones", fmtInt(r.WorkingSet)),
	}
	plots := make([]*plot.Plot, len(ops))
	for i, op := range ops {
		p := plot.New()
		p.Title.Text = titles[op]
		p.Title.TextStyle.Font.Size = vg.Points(15)
		p.Title.Padding = px(10)
		p.X.Label.Text = "concurrency (goroutines)"
		// No Y label: gonum centres it by value, which on a log scale puts
		// it near the top and squeezes the plot; the header says ops/s.
		for _, a := range []*plot.Axis{&p.X, &p.Y} {
			a.Label.TextStyle.Font.Size = vg.Points(13)
			a.Tick.Label.Font.Size = vg.Points(12)
		}
		lo, hi := r.span(op)
		if hi == 0 {
			return nil, fmt.Errorf("no %s was measured", op)
		}
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = siLogTicks{}
		p.Y.Min, p.Y.Max = niceBelow(lo/1.15), hi*1.5
		var xt plot.ConstantTicks
		for j, c := range r.Concurrencies {
			xt = append(xt, plot.Tick{Value: float64(j), Label: strconv.Itoa(c)})
		}
		p.X.Tick.Marker = xt
		p.X.Min, p.X.Max = -0.3, float64(len(r.Concurrencies))-0.7
		grid := plotter.NewGrid()
		grid.Vertical.Color = nil
		grid.Horizontal.Color = color.Gray{0xdd}
		p.Add(grid)

		for _, ci := range r.Contenders {
			var xys plotter.XYs
			for j, c := range r.Concurrencies {
				if x := r.cell(ci.Name, op, c); x != nil {
					xys = append(xys, plotter.XY{X: float64(j), Y: x.OpsPerSec})
				}
			}
			if err := addSeries(p, &legend, i == 0, ci.Name, styles[ci.Name], xys); err != nil {
				return nil, err
			}
		}
		var xys plotter.XYs
		for j, c := range r.Concurrencies {
			if x := r.rb(op, c); x != nil {
				xys = append(xys, plotter.XY{X: float64(j), Y: x.OpsPerSec})
			}
		}
		if len(xys) > 0 {
			if err := addSeries(p, &legend, i == 0, "redis-benchmark -P 1", styles["redis-benchmark"], xys); err != nil {
				return nil, err
			}
		}
		plots[i] = p
	}

	img := vgimg.NewWith(vgimg.UseWH(px(chartW), px(chartH)), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	header := draw.TextStyle{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, vg.Points(14)),
		Handler: plot.DefaultTextHandler,
		XAlign:  draw.XLeft,
		YAlign:  draw.YTop,
	}
	server := "Redis " + r.RedisVersion
	if r.Mode == modeCluster {
		server = fmt.Sprintf("Redis Cluster %s (%d nodes)", r.RedisVersion, r.Nodes)
	}
	dc.FillText(header, vg.Point{X: px(20), Y: px(chartH - 14)},
		fmt.Sprintf("Operations per second (log scales). sesh and its peers, %s, %s, %d CPUs shared by client and server; %s.",
			r.Date.Format("2006-01-02"), server, r.CPUs, r.figureIs()))
	body := draw.Crop(dc, px(10), 0, px(10), -px(44))
	legendW := px(300)
	// Aligned, so that both panels' axes start and end level.
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: px(24)}
	for i, c := range plot.Align([][]*plot.Plot{plots}, tiles, draw.Crop(body, 0, -legendW, 0, 0))[0] {
		plots[i].Draw(c)
	}
	lc := draw.Crop(body, body.Max.X-body.Min.X-legendW+px(16), 0, 0, -px(50))
	legend.Draw(lc)

	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// span returns the least and greatest ops/s measured for op.
func (r *Report) span(op string) (lo, hi float64) {
	lo = math.Inf(1)
	see := func(v float64) {
		if v > 0 {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	for _, c := range r.Cells {
		if c.Op == op {
			see(c.OpsPerSec)
		}
	}
	for _, c := range r.RedisBenchmark {
		if c.Op == op {
			see(c.OpsPerSec)
		}
	}
	return lo, hi
}

// addSeries draws xys as a line with points, and adds it to the legend once.
func addSeries(p *plot.Plot, l *plot.Legend, first bool, name string, st style, xys plotter.XYs) error {
	if st.color == nil {
		st = style{color.Gray{0x80}, draw.CircleGlyph{}, nil}
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil && len(xys) > 0 {
		return err
	}
	if line == nil {
		// Nothing measured: a legend entry only.
		line, points = &plotter.Line{}, &plotter.Scatter{}
	}
	line.Color, line.Width, line.Dashes = st.color, vg.Points(2), st.dash
	points.Color, points.Shape, points.Radius = st.color, st.glyph, vg.Points(4)
	if len(xys) > 0 {
		p.Add(line, points)
	}
	if first {
		l.Add(name, line, points)
	}
	return nil
}

// niceBelow returns the largest 1, 2 or 5 times a power of ten not above v.
func niceBelow(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, k := range []float64{5, 2, 1} {
		if k*p <= v {
			return k * p
		}
	}
	return p
}

// siLogTicks labels 1, 2 and 5 times each power of ten (10k, 20k, 50k,
// 100k, ...), with unlabelled ticks between them.
type siLogTicks struct{}

func (siLogTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for p := math.Pow(10, math.Floor(math.Log10(lo))); p <= hi; p *= 10 {
		for k := 1.0; k < 10; k++ {
			v := k * p
			if v < lo*0.9999 || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if k == 1 || k == 2 || k == 5 {
				t.Label = siLabel(v)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// siLabel names a round number: 500, 20k, 1M, 1.5M.
func siLabel(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}
