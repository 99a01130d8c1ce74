// Package lambdakit is the skeleton the control-plane Lambdas share, so each
// publisher keeps only its own logic:
//
//   - Consumer: the SQS batch loop, with bounded concurrency and partial-batch
//     failure reporting;
//   - RejectError: the one error type for input that must not be retried,
//     logged and counted apart from failures SQS should redeliver;
//   - ParseS3Event: S3 event notifications (and the s3:TestEvent) on
//     aws-lambda-go/events, with the one URL-decoding of object keys;
//   - RetryPolicy: AWS SDK clients tuned for fan-out under IoT throttling,
//     with the jittered backoff the reference agent also uses
//     (contract/backoff);
//   - Runtime, PublishRetained, ResolveDataEndpoint and Metrics: cold-start
//     setup, retained QoS 1 publishing to exact topics, discovery of the
//     account's iot-data endpoint, and CloudWatch Embedded Metric Format
//     (EMF) counters.
//
// It never imports CDK or jsii: it is linked into Lambda binaries.
package lambdakit
