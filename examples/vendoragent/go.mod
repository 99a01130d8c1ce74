module example.com/vendoragent

go 1.26.0

require github.com/agentgate/agentgate v0.0.0

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0 // indirect
	github.com/aws/smithy-go v1.28.9 // indirect
	github.com/eclipse/paho.golang v0.23.0 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	golang.org/x/net v0.61.0 // indirect
)

replace github.com/agentgate/agentgate => ../..
