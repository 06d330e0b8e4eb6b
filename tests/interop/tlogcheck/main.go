// Command tlogcheck is an independent verifier for a transparency log that
// speaks the C2SP tlog-tiles, tlog-checkpoint and signed-note formats.
//
// It deliberately uses only the Go standard library plus
// golang.org/x/mod/sumdb/{note,tlog}, so it shares no code with the
// Python implementation under test. It builds in GOPATH mode against
// Debian's golang-golang-x-mod-dev package:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=/tmp/gocache \
//	    go build -o tlogcheck ./tests/interop/tlogcheck
//
// Usage:
//
//	tlogcheck -url http://127.0.0.1:PORT -vkey 'name+hexid+base64key' \
//	    [-max-pairs N] [-old 'N:base64root,N:base64root'] [-origin NAME] \
//	    [-allow-full-fallback] [-seed S] [-v]
//
// Checks performed:
//   - GET <url>/checkpoint, verify its signed note with the given key, and
//     parse the C2SP checkpoint body (origin, decimal size, base64 root,
//     optional non-empty extension lines) strictly.
//   - TreeHash(size) recomputed from the hash tiles equals the root
//     (tiles are read through tlog.TileHashReader, which authenticates
//     every tile against the root).
//   - For every leaf (or a sample of -max-pairs leaves when the log is
//     larger): the entry is read from its entry bundle, and an inclusion
//     proof built from the tiles is checked against the root with the
//     leaf hash SHA-256(0x00 || entry). Every entry of each fetched bundle
//     is also compared with the authenticated level-0 tile hash, and each
//     bundle must hold exactly the expected number of entries with no
//     trailing bytes.
//   - For each -old size:root pair, a consistency proof from the tiles is
//     checked between the old tree and the checkpoint.
//
// Exit status: 0 when every check passed, 1 on any verification or
// fetch failure (message on stderr), 2 on bad usage.
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	tileHeight   = 8
	tileWidth    = 1 << tileHeight // 256 hashes per full tile / entries per full bundle
	maxBodyBytes = 64 << 20
)

// ---------------------------------------------------------------------------
// Command line

type oldTree struct {
	N    int64
	Hash tlog.Hash
}

// oldList accepts "-old N:b64,N:b64" and may also be repeated.
type oldList []oldTree

func (l *oldList) String() string {
	var parts []string
	for _, o := range *l {
		parts = append(parts, fmt.Sprintf("%d:%s", o.N, o.Hash))
	}
	return strings.Join(parts, ",")
}

func (l *oldList) Set(s string) error {
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		i := strings.IndexByte(item, ':')
		if i < 0 {
			return fmt.Errorf("old tree %q: want N:base64root", item)
		}
		n, err := strconv.ParseInt(item[:i], 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("old tree %q: bad size", item)
		}
		h, err := base64.StdEncoding.DecodeString(item[i+1:])
		if err != nil || len(h) != tlog.HashSize {
			return fmt.Errorf("old tree %q: root must be base64 of %d bytes", item, tlog.HashSize)
		}
		var hash tlog.Hash
		copy(hash[:], h)
		*l = append(*l, oldTree{n, hash})
	}
	return nil
}

type failure struct{ msg string }

func (f failure) Error() string { return f.msg }

func failf(format string, args ...interface{}) error {
	return failure{fmt.Sprintf(format, args...)}
}

func main() {
	var (
		baseURL  = flag.String("url", "", "base URL of the log (checkpoint at <url>/checkpoint)")
		vkey     = flag.String("vkey", "", "signed-note verifier key name+hexid+base64key")
		maxPairs = flag.Int("max-pairs", 300, "max inclusion proofs to check; all leaves when size <= this; 0 = all leaves")
		origin   = flag.String("origin", "", "if set, the checkpoint origin line must equal this")
		fallback = flag.Bool("allow-full-fallback", false, "on 404 for a partial tile/bundle, fetch the full one and truncate (C2SP client behaviour); default strict")
		seed     = flag.Int64("seed", 1, "seed for sampling leaves when the log is larger than -max-pairs")
		timeout  = flag.Duration("timeout", 20*time.Second, "per-request HTTP timeout")
		verbose  = flag.Bool("v", false, "log every HTTP request to stderr")
		olds     oldList
	)
	flag.Var(&olds, "old", "comma list of earlier tree heads N:base64root to prove consistent with the checkpoint (repeatable)")
	flag.Parse()
	if *baseURL == "" || *vkey == "" || flag.NArg() != 0 || *maxPairs < 0 {
		fmt.Fprintln(os.Stderr, "usage: tlogcheck -url http://HOST:PORT -vkey name+hexid+base64key [-max-pairs N] [-old N:root,...]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(*vkey)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlogcheck: bad -vkey: %v\n", err)
		os.Exit(2)
	}

	c := &checker{
		fetch: &fetcher{
			base:     strings.TrimRight(*baseURL, "/"),
			client:   &http.Client{Timeout: *timeout, Transport: &http.Transport{Proxy: nil}},
			verbose:  *verbose,
			fallback: *fallback,
			cache:    map[string][]byte{},
			viaFull:  map[string][]byte{},
		},
		verifier: verifier,
		origin:   *origin,
		maxPairs: *maxPairs,
		seed:     *seed,
		olds:     olds,
	}
	summary, err := c.run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlogcheck: FAIL: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(summary)
}

// ---------------------------------------------------------------------------
// HTTP

type fetcher struct {
	base      string
	client    *http.Client
	verbose   bool
	fallback  bool
	cache     map[string][]byte // raw (unauthenticated) bodies by path
	viaFull   map[string][]byte // partial path -> full body served instead (fallback)
	requests  int
	fallbacks int
}

var errNotFound = errors.New("404 not found")

// get fetches base/path; the body is cached, since tlog.TileHashReader
// re-authenticates tiles against the root on every ReadHashes call.
func (f *fetcher) get(path string) ([]byte, error) {
	if b, ok := f.cache[path]; ok {
		return b, nil
	}
	u := f.base + "/" + path
	f.requests++
	resp, err := f.client.Get(u)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if f.verbose {
		fmt.Fprintf(os.Stderr, "tlogcheck: GET %s -> %d (%d bytes)\n", u, resp.StatusCode, len(body))
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %v", u, err)
	}
	if len(body) > maxBodyBytes {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes", u, maxBodyBytes)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("GET %s: %w", u, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP status %d", u, resp.StatusCode)
	}
	f.cache[path] = body
	return body, nil
}

// c2spPath converts an x/mod tile (height 8) to its C2SP tlog-tiles path:
// Go's tile/8/<L>/<N>[.p/<W>] becomes tile/<L>/<N>[.p/<W>], and Go's data
// level tile/8/data/<N>[.p/<W>] becomes the entry bundle tile/entries/<N>[.p/<W>].
// The <N> encoding (x001/x234/067) is the same in both.
func c2spPath(t tlog.Tile) string {
	if t.H != tileHeight {
		panic(fmt.Sprintf("tlogcheck: unexpected tile height %d", t.H))
	}
	p := t.Path()
	prefix := fmt.Sprintf("tile/%d/", tileHeight)
	if !strings.HasPrefix(p, prefix) {
		panic("tlogcheck: unexpected tile path " + p)
	}
	p = p[len(prefix):]
	if strings.HasPrefix(p, "data/") {
		return "tile/entries/" + p[len("data/"):]
	}
	return "tile/" + p
}

// getTile fetches t; with -allow-full-fallback a 404 on a partial resource
// is retried as the full resource, returned whole (the caller truncates).
// The outcome of a fallback is remembered so it is requested only once.
func (f *fetcher) getTile(t tlog.Tile) (body []byte, full bool, err error) {
	path := c2spPath(t)
	if b, ok := f.viaFull[path]; ok {
		return b, true, nil
	}
	body, err = f.get(path)
	if err == nil || !f.fallback || t.W == tileWidth || !errors.Is(err, errNotFound) {
		return body, false, err
	}
	ft := t
	ft.W = tileWidth
	body, err2 := f.get(c2spPath(ft))
	if err2 != nil {
		return nil, false, fmt.Errorf("%v; full-tile fallback: %v", err, err2)
	}
	f.fallbacks++
	f.viaFull[path] = body
	return body, true, nil
}

// tileReader implements tlog.TileReader over HTTP.
type tileReader struct{ f *fetcher }

func (r tileReader) Height() int { return tileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.L < 0 {
			return nil, fmt.Errorf("unexpected request for data tile %s", c2spPath(t))
		}
		body, full, err := r.f.getTile(t)
		if err != nil {
			return nil, err
		}
		want := t.W * tlog.HashSize
		if full {
			if len(body) != tileWidth*tlog.HashSize {
				return nil, failf("hash tile %s (full-tile fallback): got %d bytes, want %d",
					c2spPath(t), len(body), tileWidth*tlog.HashSize)
			}
			body = body[:want]
		}
		if len(body) != want {
			return nil, failf("hash tile %s: got %d bytes, want %d (width %d x %d-byte hashes)",
				c2spPath(t), len(body), want, t.W, tlog.HashSize)
		}
		out[i] = body
	}
	return out, nil
}

func (r tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// parseBundle splits a C2SP entry bundle: a concatenation of
// big-endian uint16 length || entry bytes.
func parseBundle(b []byte) ([][]byte, error) {
	var entries [][]byte
	for off := 0; off < len(b); {
		if len(b)-off < 2 {
			return nil, fmt.Errorf("trailing %d byte(s) at offset %d (truncated length prefix)", len(b)-off, off)
		}
		n := int(binary.BigEndian.Uint16(b[off:]))
		off += 2
		if len(b)-off < n {
			return nil, fmt.Errorf("entry %d at offset %d: length %d but only %d bytes left", len(entries), off-2, n, len(b)-off)
		}
		entries = append(entries, b[off:off+n])
		off += n
	}
	return entries, nil
}

// readBundle fetches entry bundle number n of a tree of the given size and
// returns exactly its expected entries.
func (f *fetcher) readBundle(n, size int64) ([][]byte, string, error) {
	w := size - n*tileWidth
	if w > tileWidth {
		w = tileWidth
	}
	t := tlog.Tile{H: tileHeight, L: -1, N: n, W: int(w)}
	path := c2spPath(t)
	body, full, err := f.getTile(t)
	if err != nil {
		return nil, path, err
	}
	entries, err := parseBundle(body)
	if err != nil {
		return nil, path, failf("entry bundle %s: %v", path, err)
	}
	want := int(w)
	if full {
		want = tileWidth
	}
	if len(entries) != want {
		return nil, path, failf("entry bundle %s: parsed %d entries, want %d", path, len(entries), want)
	}
	return entries[:w], path, nil
}

// ---------------------------------------------------------------------------
// Checkpoint

type checkpoint struct {
	Origin     string
	Tree       tlog.Tree
	Extensions []string
	Sigs       int
	Unverified int
}

// parseCheckpoint parses a C2SP tlog-checkpoint note body:
//
//	<origin>\n<decimal size>\n<base64 root>\n[<extension line>\n ...]
//
// (x/mod 0.7.0's tlog.ParseTree only accepts the old
// "go.sum database tree\n" header, so it cannot be used here.)
func parseCheckpoint(text string) (checkpoint, error) {
	var cp checkpoint
	if !strings.HasSuffix(text, "\n") {
		return cp, errors.New("checkpoint body does not end in newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return cp, fmt.Errorf("checkpoint body has %d lines, want at least 3", len(lines))
	}
	cp.Origin = lines[0]
	if cp.Origin == "" {
		return cp, errors.New("checkpoint origin line is empty")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return cp, fmt.Errorf("checkpoint size line %q is not a canonical non-negative decimal", lines[1])
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return cp, fmt.Errorf("checkpoint root line %q is not base64 of %d bytes", lines[2], tlog.HashSize)
	}
	copy(cp.Tree.Hash[:], h)
	cp.Tree.N = n
	for i, ext := range lines[3:] {
		if ext == "" {
			return cp, fmt.Errorf("checkpoint extension line %d is empty", i+1)
		}
	}
	cp.Extensions = lines[3:]
	// The three mandatory lines must re-encode byte for byte.
	reenc := fmt.Sprintf("%s\n%d\n%s\n", cp.Origin, cp.Tree.N, base64.StdEncoding.EncodeToString(cp.Tree.Hash[:]))
	if !strings.HasPrefix(text, reenc) {
		return cp, errors.New("checkpoint body does not re-encode identically")
	}
	return cp, nil
}

// ---------------------------------------------------------------------------
// Checks

type checker struct {
	fetch    *fetcher
	verifier note.Verifier
	origin   string
	maxPairs int
	seed     int64
	olds     oldList
}

var emptyRoot = tlog.Hash(sha256.Sum256(nil))

func (c *checker) run() (string, error) {
	raw, err := c.fetch.get("checkpoint")
	if err != nil {
		return "", err
	}
	n, err := note.Open(raw, note.VerifierList(c.verifier))
	if err != nil {
		return "", fmt.Errorf("checkpoint signature: %v", err)
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		return "", err
	}
	cp.Sigs, cp.Unverified = len(n.Sigs), len(n.UnverifiedSigs)
	if c.origin != "" && cp.Origin != c.origin {
		return "", fmt.Errorf("checkpoint origin %q, want %q", cp.Origin, c.origin)
	}
	size, root := cp.Tree.N, cp.Tree.Hash

	for _, o := range c.olds {
		if o.N > size {
			return "", fmt.Errorf("old tree size %d is larger than checkpoint size %d", o.N, size)
		}
		// Note: tlog.TreeHash(0) returns 32 zero bytes, but an empty
		// RFC 6962 tree hashes to SHA-256(""); check that directly.
		if o.N == 0 && o.Hash != emptyRoot {
			return "", fmt.Errorf("old tree of size 0 has root %s, want SHA-256(\"\") %s", o.Hash, emptyRoot)
		}
	}

	if size == 0 {
		// tlog.TileHashReader cannot handle an empty tree (it would index
		// an empty slice), so only the root can be checked.
		if root != emptyRoot {
			return "", fmt.Errorf("checkpoint of size 0 has root %s, want SHA-256(\"\") %s", root, emptyRoot)
		}
		return fmt.Sprintf("OK origin=%q size=0 root=%s (empty tree) consistency=%d requests=%d",
			cp.Origin, root, len(c.olds), c.fetch.requests), nil
	}

	hr := tlog.TileHashReader(cp.Tree, tileReader{c.fetch})

	th, err := tlog.TreeHash(size, hr)
	if err != nil {
		return "", fmt.Errorf("tree hash from tiles: %v", err)
	}
	if th != root {
		return "", fmt.Errorf("tree hash from tiles %s != checkpoint root %s", th, root)
	}

	// Leaves to prove.
	leaves := c.pickLeaves(size)
	bundles := map[int64][][]byte{}
	checkedEntries := int64(0)
	for _, i := range leaves {
		b := i / tileWidth
		if _, ok := bundles[b]; ok {
			continue
		}
		entries, path, err := c.fetch.readBundle(b, size)
		if err != nil {
			return "", err
		}
		// Every entry in the bundle must match the authenticated level-0 hash.
		idx := make([]int64, len(entries))
		for k := range entries {
			idx[k] = tlog.StoredHashIndex(0, b*tileWidth+int64(k))
		}
		hashes, err := hr.ReadHashes(idx)
		if err != nil {
			return "", fmt.Errorf("reading leaf hashes for %s: %v", path, err)
		}
		for k, e := range entries {
			if got := tlog.RecordHash(e); got != hashes[k] {
				return "", fmt.Errorf("entry bundle %s: entry %d (leaf %d) hashes to %s, tile has %s",
					path, k, b*tileWidth+int64(k), got, hashes[k])
			}
		}
		checkedEntries += int64(len(entries))
		bundles[b] = entries
	}
	for _, i := range leaves {
		entry := bundles[i/tileWidth][i%tileWidth]
		p, err := tlog.ProveRecord(size, i, hr)
		if err != nil {
			return "", fmt.Errorf("inclusion proof for leaf %d: %v", i, err)
		}
		if err := tlog.CheckRecord(p, size, root, i, tlog.RecordHash(entry)); err != nil {
			return "", fmt.Errorf("inclusion proof for leaf %d of %d: %v", i, size, err)
		}
	}

	// Consistency with earlier tree heads.
	for _, o := range c.olds {
		if o.N == 0 {
			continue // checked against SHA-256("") above
		}
		p, err := tlog.ProveTree(size, o.N, hr)
		if err != nil {
			return "", fmt.Errorf("consistency proof %d -> %d: %v", o.N, size, err)
		}
		if err := tlog.CheckTree(p, size, root, o.N, o.Hash); err != nil {
			return "", fmt.Errorf("consistency proof %d -> %d: old root %s not consistent with checkpoint root %s: %v",
				o.N, size, o.Hash, root, err)
		}
	}

	return fmt.Sprintf("OK origin=%q size=%d root=%s sigs=%d other_sigs=%d extensions=%d "+
		"inclusion=%d/%d entries_checked=%d bundles=%d consistency=%d requests=%d fallbacks=%d",
		cp.Origin, size, root, cp.Sigs, cp.Unverified, len(cp.Extensions),
		len(leaves), size, checkedEntries, len(bundles), len(c.olds), c.fetch.requests, c.fetch.fallbacks), nil
}

// pickLeaves returns all leaf indexes when the log is small enough, and
// otherwise a deterministic sample that always includes the edges and the
// bundle/tile boundaries nearest them.
func (c *checker) pickLeaves(size int64) []int64 {
	if c.maxPairs == 0 || size <= int64(c.maxPairs) {
		all := make([]int64, size)
		for i := range all {
			all[i] = int64(i)
		}
		return all
	}
	set := map[int64]bool{}
	add := func(i int64) {
		if i >= 0 && i < size && len(set) < c.maxPairs {
			set[i] = true
		}
	}
	last := size - 1
	for _, i := range []int64{0, last, 1, last - 1, tileWidth - 1, tileWidth, last - last%tileWidth, last - last%tileWidth - 1} {
		add(i)
	}
	rng := rand.New(rand.NewSource(c.seed))
	for len(set) < c.maxPairs {
		add(rng.Int63n(size))
	}
	out := make([]int64, 0, len(set))
	for i := range set {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}
