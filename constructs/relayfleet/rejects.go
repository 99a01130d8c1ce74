package relayfleet

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/contract/relayspec"
)

// addRejectsMetric counts the relay's refusal lines (relayspec's log
// contract) into RejectsMetricName with the fleet as a dimension.
//
// A metric filter takes a dimension's value from a field of the log event,
// not from a constant (AWS::Logs::MetricFilter Dimension: "The fields to
// use as dimensions"; a constant value is an open request,
// aws-cloudformation-resource-providers-logs issue 108). The relay does not
// know its fleet, so a log transformer adds the field at ingestion: parse
// the JSON line, then addKeys FleetLogKey = the fleet name (CloudWatch Logs
// User Guide, "Processors that you can use" → parseJSON, addKeys), and the
// filter runs on the transformed events (PutMetricFilter
// applyOnTransformedLogs). A filter with dimensions cannot also have a
// default value ("dimensions and default value are mutually exclusive":
// the CloudWatch Logs API's error for MetricTransformation), so a period
// without refusals has no data point; the rejects alarm treats missing data
// as not breaching.
func (f *fleet) addRejectsMetric() {
	parse := awslogs.NewParserProcessor(&awslogs.ParserProcessorProps{Type: awslogs.ParserProcessorType_JSON})
	addFleet := awslogs.NewJsonMutatorProcessor(&awslogs.JsonMutatorProps{
		Type: awslogs.JsonMutatorType_ADD_KEYS,
		AddKeysOptions: &awslogs.AddKeysProperty{Entries: &[]*awslogs.AddKeyEntryProperty{
			{Key: jsii.String(FleetLogKey), Value: jsii.String(f.fleetName), OverwriteIfExists: jsii.Bool(true)},
		}},
	})
	transformer := awslogs.NewTransformer(f.Construct, jsii.String("LogTransformer"), &awslogs.TransformerProps{
		LogGroup:          f.logs,
		TransformerName:   jsii.String("relay-fleet"),
		TransformerConfig: &[]awslogs.IProcessor{parse, addFleet},
	})
	filter := awslogs.NewMetricFilter(f.Construct, jsii.String("Rejects"), &awslogs.MetricFilterProps{
		LogGroup:               f.logs,
		FilterPattern:          awslogs.FilterPattern_StringValue(jsii.String(relayspec.LogMessageSelector), jsii.String("="), jsii.String(relayspec.RejectLogMessage)),
		MetricNamespace:        jsii.String(RejectsMetricNamespace),
		MetricName:             jsii.String(RejectsMetricName),
		MetricValue:            jsii.String("1"),
		Dimensions:             &map[string]*string{RejectsFleetDimension: jsii.String("$." + FleetLogKey)},
		ApplyOnTransformedLogs: jsii.Bool(true),
	})
	// The filter reads a field only the transformer adds.
	filter.Node().AddDependency(transformer)
}
