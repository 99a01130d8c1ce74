package lambdakit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/agentgate/agentgate/contract/lambdaenv"
)

// standInIoT answers DescribeEndpoint like the IoT API (GET /endpoint).
func standInIoT(t *testing.T, status int, body string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/endpoint" || r.URL.Query().Get("endpointType") != "iot:Data-ATS" {
			http.Error(w, "unexpected "+r.URL.String(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func runtimeEnv(t *testing.T, iotURL, dataEndpoint string) {
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_ENDPOINT_URL_IOT", iotURL)
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv(lambdaenv.IotDataEndpoint, dataEndpoint)
}

func TestNewRuntimeDiscoversTheDataEndpoint(t *testing.T) {
	srv, calls := standInIoT(t, 200, `{"endpointAddress":"abc123-ats.iot.eu-west-1.amazonaws.com"}`)
	runtimeEnv(t, srv.URL, "")
	rt, err := NewRuntime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(rt.Data.Options().BaseEndpoint); got != "https://abc123-ats.iot.eu-west-1.amazonaws.com" {
		t.Errorf("iot-data endpoint %q", got)
	}
	if calls.Load() != 1 {
		t.Errorf("%d DescribeEndpoint calls, want 1", calls.Load())
	}
	if rt.Log == nil || rt.IoT == nil {
		t.Error("logger or IoT client missing")
	}
}

func TestNewRuntimeUsesTheConfiguredEndpointWithoutACall(t *testing.T) {
	srv, calls := standInIoT(t, 200, `{}`)
	runtimeEnv(t, srv.URL, "given-ats.iot.eu-west-1.amazonaws.com")
	rt, err := NewRuntime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(rt.Data.Options().BaseEndpoint); got != "https://given-ats.iot.eu-west-1.amazonaws.com" {
		t.Errorf("iot-data endpoint %q", got)
	}
	if calls.Load() != 0 {
		t.Errorf("%d DescribeEndpoint calls, want none", calls.Load())
	}
}

func TestNewRuntimeFailsClearlyWhenDiscoveryIsDenied(t *testing.T) {
	srv, _ := standInIoT(t, 403, `{"message":"not authorized"}`)
	runtimeEnv(t, srv.URL, "")
	_, err := NewRuntime(context.Background())
	if err == nil || !strings.Contains(err.Error(), "resolve iot-data endpoint") {
		t.Fatalf("error %v, want one saying the endpoint could not be resolved", err)
	}
}

func TestMustGetenvNamesEveryMissingVariable(t *testing.T) {
	t.Setenv("LAMBDAKIT_SET", "v")
	t.Setenv("LAMBDAKIT_EMPTY", "")
	if _, err := MustGetenv("LAMBDAKIT_SET", "LAMBDAKIT_EMPTY", "LAMBDAKIT_UNSET_X"); err == nil ||
		!strings.Contains(err.Error(), "LAMBDAKIT_EMPTY") || !strings.Contains(err.Error(), "LAMBDAKIT_UNSET_X") || strings.Contains(err.Error(), "LAMBDAKIT_SET ") {
		t.Errorf("error %v", err)
	}
	vals, err := MustGetenv("LAMBDAKIT_SET")
	if err != nil || len(vals) != 1 || vals[0] != "v" {
		t.Errorf("MustGetenv = %v, %v", vals, err)
	}
}
