module example.com/saasbackend

go 1.26.0

require (
	github.com/agentgate/agentgate v0.0.0
	github.com/eclipse/paho.golang v0.23.0
)

replace github.com/agentgate/agentgate => ../..
