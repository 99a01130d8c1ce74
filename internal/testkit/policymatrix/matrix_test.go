package policymatrix

import (
	"encoding/json"
	"testing"
)

func TestResolve(t *testing.T) {
	var frag any
	_ = json.Unmarshal([]byte(`{"Resource":[{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iot:r:1:client/${iot:Connection.Thing.ThingName}"]]},
	  {"Fn::Join":["",[{"Fn::GetAtt":["Bucket","Arn"]},"/releases/*"]]},{"Fn::ImportValue":"exp"},
	  {"Fn::GetStackOutput":{"StackName":"other","OutputName":"out"}}]}`), &frag)
	got, err := Resolve(frag, map[string]string{"AWS::Partition": "aws", "Bucket.Arn": "arn:aws:s3:::b", "import:exp": "v", "output:out": "o"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `{"Resource":["arn:aws:iot:r:1:client/${iot:Connection.Thing.ThingName}","arn:aws:s3:::b/releases/*","v","o"]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if _, err := Resolve(map[string]any{"Ref": "Missing"}, nil); err == nil {
		t.Error("missing Ref resolved")
	}
	if _, err := Resolve(map[string]any{"Fn::Sub": "x"}, nil); err == nil {
		t.Error("unsupported intrinsic resolved")
	}
}
