package track

// Internals for the black-box tests in package track_test.

// Trust exposes a node's trust, with its time passed in.
type Trust = trust

func (t *trust) Up(start, now, maxStale int64) bool { return t.up(start, now, maxStale) }
func (t *trust) Down(now int64)                     { t.down(now) }
func (t *trust) Distrust(now int64)                 { t.distrust(now) }
func (t *trust) Flush(now int64)                    { t.flush(now) }
func (t *trust) Heard(sent, now, maxStale int64) (int64, bool) {
	return t.heard(sent, now, maxStale)
}
func (t *trust) Tracking() bool                                  { return t.tracking() }
func (t *trust) Serves(epoch uint64, now int64) bool             { return t.serves(epoch, now) }
func (t *trust) Begin(now int64) (uint64, bool)                  { return t.begin(now) }
func (t *trust) Bypassed(now int64) (bypassed bool, total int64) { return t.bypassed(now) }

// Entries exposes the entry store.
type Entries = entries

func NewEntries(size int) *Entries                               { es := newEntries(size); return &es }
func (es *entries) Put(e *Entry, admit func(victim *Entry) bool) { es.put(e, admit) }
func (es *entries) Lookup(token string) *Entry                   { return es.lookup(token) }
func (es *entries) Drop(e *Entry)                                { es.drop(e) }
func (es *entries) Shards() int                                  { return len(es.shards) }

// Len returns how many entries es holds.
func (es *entries) Len() int {
	n := 0
	for i := range es.shards {
		n += len(es.shards[i].list)
	}
	return n
}

// One returns the node of a cache without a Router, and the sink methods
// its tracker calls.
func (c *Cache) One() *Node          { return c.one }
func (n *Node) Up(start int64)       { n.up(start) }
func (n *Node) Down()                { n.down() }
func (n *Node) Flushed()             { n.flushed() }
func (n *Node) Invalidate(k []byte)  { n.invalidate(k) }
func (n *Node) Unheard(epoch uint64) { n.unheard(epoch) }
func (n *Node) Epoch() uint64        { return n.epoch() }
