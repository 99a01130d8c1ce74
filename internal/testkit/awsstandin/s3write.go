package awsstandin

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxPutBytes bounds one PutObject body in the stand-in.
const maxPutBytes = 256 << 20

// BodyFault changes the bytes one GetObject response sends, for download
// tests: a transfer cut short, a stall, extra bytes, or other bytes.
type BodyFault struct {
	// CutAt > 0 sends only this many bytes, then drops the connection.
	CutAt int
	// StallAt > 0 sends this many bytes, then sends nothing more until the
	// client gives up.
	StallAt int
	// Append is sent after the object's bytes (the length header still
	// says the object's size, so the server connection is closed after it).
	Append []byte
	// Replace, when not nil, is sent instead of the object's bytes.
	Replace []byte
}

// BodyFaultFunc decides the body fault of one GetObject of key (bucket/key);
// n counts that key's GetObject requests from 1.
type BodyFaultFunc func(key string, n int) BodyFault

// SetBodyFault installs (nil removes) the GetObject body fault hook.
func (a *AWS) SetBodyFault(f BodyFaultFunc) { a.mu.Lock(); a.bodyFault = f; a.mu.Unlock() }

// GetObjectRanges returns the Range headers GetObject of bucket/key saw, in order
// ("" for a request without one).
func (a *AWS) GetObjectRanges(bucket, key string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ranges[bucket+"/"+key]...)
}

// s3Body writes body (or what the body fault makes of it).
func (a *AWS) s3Body(w http.ResponseWriter, r *http.Request, key string, body []byte) {
	a.mu.Lock()
	f := a.bodyFault
	a.ranges[key] = append(a.ranges[key], r.Header.Get("Range"))
	n := len(a.ranges[key])
	a.mu.Unlock()
	if f == nil {
		_, _ = w.Write(body)
		return
	}
	bf := f(key, n)
	if bf.Replace != nil {
		body = bf.Replace
	}
	switch {
	case bf.CutAt > 0 && bf.CutAt < len(body):
		_, _ = w.Write(body[:bf.CutAt])
		hijackClose(w)
	case bf.StallAt > 0 && bf.StallAt < len(body):
		_, _ = w.Write(body[:bf.StallAt])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		<-r.Context().Done()
	default:
		_, _ = w.Write(body)
		if len(bf.Append) > 0 {
			_, _ = w.Write(bf.Append)
		}
	}
}

// hijackClose drops the connection after flushing what was written.
func hijackClose(w http.ResponseWriter) {
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
		}
	}
}

// s3Range answers a single "bytes=first-[last]" range with 206.
func (a *AWS) s3Range(w http.ResponseWriter, r *http.Request, rg string, body []byte) {
	spec, ok := strings.CutPrefix(rg, "bytes=")
	first, last, ok2 := strings.Cut(spec, "-")
	start, err1 := strconv.Atoi(first)
	end := len(body) - 1
	var err2 error
	if last != "" {
		end, err2 = strconv.Atoi(last)
		end = min(end, len(body)-1)
	}
	if !ok || !ok2 || err1 != nil || err2 != nil || start < 0 || start >= len(body) || end < start {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(body)))
		s3Error(w, r, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
		return
	}
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(body)))
	w.Header().Set("Content-Length", strconv.Itoa(end-start+1))
	w.WriteHeader(http.StatusPartialContent)
	a.s3Body(w, r, strings.TrimPrefix(r.URL.Path, "/"), body[start:end+1])
}

// s3Put serves PutObject: PUT /{bucket}/{key}. It decodes aws-chunked
// bodies, checks a sent x-amz-checksum-sha256 (S3 answers BadDigest when it
// differs) and keeps it for HeadObject's checksum mode.
func (a *AWS) s3Put(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	if !a.begin(w, r, "PutObject", path) {
		return
	}
	if strings.Count(path, "/") < 1 || strings.HasSuffix(path, "/") {
		s3Error(w, r, http.StatusBadRequest, "InvalidRequest", "path must be /bucket/key")
		return
	}
	var src io.Reader = io.LimitReader(r.Body, maxPutBytes+1)
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") || strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		body, trailer, err := decodeAWSChunked(bufio.NewReader(src))
		if err != nil {
			s3Error(w, r, http.StatusBadRequest, "IncompleteBody", err.Error())
			return
		}
		src = bytes.NewReader(body)
		for k, v := range trailer {
			r.Header.Set(k, v)
		}
	}
	body, err := io.ReadAll(src)
	if err != nil || len(body) > maxPutBytes {
		s3Error(w, r, http.StatusBadRequest, "EntityTooLarge", "stand-in body limit")
		return
	}
	sum := sha256.Sum256(body)
	checksum := false
	if c := r.Header.Get("X-Amz-Checksum-Sha256"); c != "" {
		if c != base64.StdEncoding.EncodeToString(sum[:]) {
			s3Error(w, r, http.StatusBadRequest, "BadDigest", "The SHA256 you specified did not match the calculated checksum.")
			return
		}
		checksum = true
	}
	bucket, key, _ := strings.Cut(path, "/")
	id := a.put(bucket, key, &objectVersion{body: body, lastModified: time.Now().UTC().Truncate(time.Second), checksum: checksum})
	a.mu.Lock()
	a.counts["PutObject ok"]++
	a.mu.Unlock()
	w.Header().Set("x-amz-version-id", id)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	if checksum {
		w.Header().Set("x-amz-checksum-sha256", base64.StdEncoding.EncodeToString(sum[:]))
	}
	w.WriteHeader(http.StatusOK)
}

// decodeAWSChunked reads the aws-chunked encoding ("<hex size>[;chunk-signature=…]\r\n<data>\r\n"
// …, a zero chunk, then optional trailer lines).
func decodeAWSChunked(br *bufio.Reader) ([]byte, map[string]string, error) {
	var out bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, nil, fmt.Errorf("chunk header: %w", err)
		}
		sizeHex, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(sizeHex, 16, 64)
		if err != nil || n < 0 || int64(out.Len())+n > maxPutBytes {
			return nil, nil, fmt.Errorf("chunk size %q", sizeHex)
		}
		if n == 0 {
			break
		}
		if _, err := io.CopyN(&out, br, n); err != nil {
			return nil, nil, err
		}
		if _, err := br.Discard(2); err != nil {
			return nil, nil, err
		}
	}
	trailer := map[string]string{}
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok {
			trailer[http.CanonicalHeaderKey(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		if err != nil || line == "" {
			break
		}
	}
	return out.Bytes(), trailer, nil
}
