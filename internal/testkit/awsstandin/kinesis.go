package awsstandin

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// Kinesis is a stand-in of Kinesis Data Streams' PutRecord (AWS JSON 1.1,
// X-Amz-Target Kinesis_20131202.PutRecord), for the real aws-sdk-go-v2
// kinesis client with BaseEndpoint = URL. It keeps every record in arrival
// order, each with a stream-wide increasing sequence number, and can be
// told to throttle.
type Kinesis struct {
	// URL is the endpoint.
	URL string
	// Stream is the only stream name it accepts.
	Stream string

	mu       sync.Mutex
	records  []KinesisRecord
	throttle int
	aws      *AWS
}

// KinesisRecord is one stored record.
type KinesisRecord struct {
	PartitionKey string
	Data         []byte
	Sequence     int
}

// Kinesis limits the stand-in enforces, as the service does
// (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html):
// a record's data blob is at most 1 MiB (the service counts the partition
// key too), a partition key 1..256 characters.
const (
	kinesisMaxData         = 1 << 20
	kinesisMaxPartitionKey = 256
)

// StartKinesis serves a stream named stream.
func StartKinesis(stream string) *Kinesis {
	k := &Kinesis{Stream: stream, aws: &AWS{}}
	k.URL = k.aws.serve(http.HandlerFunc(k.serveHTTP))
	return k
}

// Close stops the server.
func (k *Kinesis) Close() { k.aws.Close() }

// Throttle makes the next n PutRecord calls fail with
// ProvisionedThroughputExceededException (HTTP 400), which the SDK retries.
func (k *Kinesis) Throttle(n int) {
	k.mu.Lock()
	k.throttle = n
	k.mu.Unlock()
}

// Records returns a copy of every record so far, in arrival order.
func (k *Kinesis) Records() []KinesisRecord {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]KinesisRecord(nil), k.records...)
}

func (k *Kinesis) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); target != "Kinesis_20131202.PutRecord" {
		jsonError(w, http.StatusBadRequest, "UnknownOperationException", "stand-in does not serve "+target)
		return
	}
	body := http.MaxBytesReader(w, r.Body, 2*kinesisMaxData)
	var in struct {
		StreamName, StreamARN, PartitionKey string
		Data                                string
	}
	if err := json.NewDecoder(body).Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	data, err := base64.StdEncoding.DecodeString(in.Data)
	switch {
	case in.StreamName != k.Stream:
		jsonError(w, http.StatusBadRequest, "ResourceNotFoundException", fmt.Sprintf("stream %q not found", in.StreamName))
		return
	case err != nil:
		jsonError(w, http.StatusBadRequest, "SerializationException", "Data is not base64")
		return
	case len(in.PartitionKey) == 0 || len(in.PartitionKey) > kinesisMaxPartitionKey:
		jsonError(w, http.StatusBadRequest, "ValidationException", "PartitionKey must be 1..256 characters")
		return
	case len(data)+len(in.PartitionKey) > kinesisMaxData:
		jsonError(w, http.StatusBadRequest, "ValidationException", "record exceeds 1 MiB")
		return
	}
	k.mu.Lock()
	if k.throttle > 0 {
		k.throttle--
		k.mu.Unlock()
		jsonError(w, http.StatusBadRequest, "ProvisionedThroughputExceededException", "Rate exceeded for shard shardId-000000000000")
		return
	}
	seq := len(k.records) + 1
	k.records = append(k.records, KinesisRecord{PartitionKey: in.PartitionKey, Data: data, Sequence: seq})
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]string{"ShardId": "shardId-000000000000", "SequenceNumber": fmt.Sprintf("%056d", seq)})
}
