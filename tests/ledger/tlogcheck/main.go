// tlogcheck audits a C2SP transparency log over HTTP with the Go checksum database's
// own libraries: the checkpoint's signature with golang.org/x/mod/sumdb/note, and, for
// every entry, an inclusion proof built from hash tiles alone with
// golang.org/x/mod/sumdb/tlog (TileHashReader, ProveRecord, CheckRecord), plus that each
// entry in the entry bundles hashes to its leaf.
//
// usage: tlogcheck PREFIX VERIFIER-KEY   (PREFIX is the log's URL, e.g. http://host/log)
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8
const width = 1 << height

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tlogcheck: "+format+"\n", args...)
	os.Exit(1)
}

func get(url string) []byte {
	resp, err := http.Get(url)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		fail("GET %s: %s: %s", url, resp.Status, body)
	}
	return body
}

// index encodes a tile index as C2SP path elements: 3 digits each, all but the last
// prefixed with x (1234067 -> x001/x234/067).
func index(n int64) string {
	s := strconv.FormatInt(n, 10)
	for len(s)%3 != 0 {
		s = "0" + s
	}
	var parts []string
	for i := 0; i < len(s); i += 3 {
		parts = append(parts, s[i:i+3])
	}
	for i := 0; i < len(parts)-1; i++ {
		parts[i] = "x" + parts[i]
	}
	return strings.Join(parts, "/")
}

// path is the C2SP tile path (no height element, unlike the sumdb's tile/H/L/N).
func path(level string, n int64, w int) string {
	p := "tile/" + level + "/" + index(n)
	if w != width {
		p += ".p/" + strconv.Itoa(w)
	}
	return p
}

// tileReader fetches tiles over HTTP and keeps those TileHashReader has verified
// (SaveTiles), so each tile is fetched once rather than once per proof.
type tileReader struct {
	prefix  string
	fetched int
	saved   map[tlog.Tile][]byte
}

func (r *tileReader) Height() int { return height }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != height {
			return nil, fmt.Errorf("tile of height %d requested", t.H)
		}
		if data, ok := r.saved[t]; ok {
			out[i] = data
			continue
		}
		out[i] = get(r.prefix + "/" + path(strconv.Itoa(t.L), t.N, t.W))
		r.fetched++
	}
	return out, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		r.saved[t] = data[i]
	}
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: tlogcheck PREFIX VERIFIER-KEY")
	}
	prefix := strings.TrimRight(os.Args[1], "/")
	verifier, err := note.NewVerifier(os.Args[2])
	if err != nil {
		fail("verifier key: %v", err)
	}
	msg := get(prefix + "/checkpoint")
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != verifier.Name() {
		fail("checkpoint: expected origin %q, size and root lines, got %q", verifier.Name(), n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		fail("checkpoint: tree size %q", lines[1])
	}
	rootBytes, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rootBytes) != tlog.HashSize {
		fail("checkpoint: root hash %q", lines[2])
	}
	var root tlog.Hash
	copy(root[:], rootBytes)
	tree := tlog.Tree{N: size, Hash: root}

	reader := &tileReader{prefix: prefix, saved: map[tlog.Tile][]byte{}}
	hashes := tlog.TileHashReader(tree, reader)
	checked := int64(0)
	for start := int64(0); start < size; start += width {
		w := int(min(width, size-start))
		bundle := get(prefix + "/" + path("entries", start/width, w))
		level0 := get(prefix + "/" + path("0", start/width, w))
		for i := 0; i < w; i++ {
			if len(bundle) < 2 {
				fail("entry bundle %d: entry %d missing", start/width, i)
			}
			length := int(bundle[0])<<8 | int(bundle[1])
			if len(bundle) < 2+length {
				fail("entry bundle %d: entry %d runs past the end", start/width, i)
			}
			entry := bundle[2 : 2+length]
			bundle = bundle[2+length:]
			seq := start + int64(i)
			leaf := tlog.RecordHash(entry)
			if !bytes.Equal(leaf[:], level0[32*i:32*i+32]) {
				fail("entry %d: its bundle bytes do not hash to its level-0 tile hash", seq)
			}
			proof, err := tlog.ProveRecord(size, seq, hashes)
			if err != nil {
				fail("entry %d: proof from tiles: %v", seq, err)
			}
			if err := tlog.CheckRecord(proof, size, root, seq, leaf); err != nil {
				fail("entry %d: inclusion: %v", seq, err)
			}
			// The check must be able to fail: another leaf never verifies.
			wrong := leaf
			wrong[0] ^= 1
			if tlog.CheckRecord(proof, size, root, seq, wrong) == nil {
				fail("entry %d: a changed leaf verified", seq)
			}
			checked++
		}
		if len(bundle) != 0 {
			fail("entry bundle %d: %d bytes after its %d entries", start/width, len(bundle), w)
		}
	}
	// The tree hash itself, from tiles alone.
	th, err := tlog.TreeHash(size, hashes)
	if err != nil || th != root {
		fail("tree hash from tiles: %v (got %x, checkpoint says %x)", err, th, root)
	}
	fmt.Printf("ok: checkpoint %s size %d signed by %s; %d entries proved from tiles (%d tiles read)\n",
		lines[0], size, verifier.Name(), checked, reader.fetched)
}
