// Command saasbackend is a SaaS backend sending one command to one agent
// with agentgate's command package, from a Go module of its own as a
// vendor's backend would. It connects to the broker (AWS IoT Core: mutual
// TLS with the backend's certificate on port 8883, or 443 with ALPN
// x-amzn-mqtt-ca), subscribes to the customer's result topics, sends the
// command and prints the agent's result as JSON: exit 0 when the agent
// answered (whatever the status), 1 on a timeout or any other failure.
//
//	saasbackend -broker a1b2-ats.iot.eu-west-1.amazonaws.com:8883 \
//	  -cert backend.crt -key backend.key -client-id saas-backend \
//	  -customer acme-01 -thing dev-4711 -name restart -args '{"service":"spooler"}'
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/command"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "saasbackend:", err)
		os.Exit(1)
	}
}

func run() error {
	broker := flag.String("broker", "", "host:port of the MQTT broker")
	certFile := flag.String("cert", "", "client certificate (PEM); empty: plain TCP (test brokers only)")
	keyFile := flag.String("key", "", "client key (PEM)")
	clientID := flag.String("client-id", "saas-backend", "MQTT client ID")
	customer := flag.String("customer", "", "the agent's customer ID")
	thing := flag.String("thing", "", "the agent's thing name")
	name := flag.String("name", "", "command name")
	args := flag.String("args", "", "command arguments (JSON)")
	id := flag.String("id", "", "command ID; empty picks a random one (reuse one only to resend the same command)")
	timeout := flag.Duration("timeout", time.Minute, "the command's deadline, from now")
	flag.Parse()
	if *broker == "" || *customer == "" || *thing == "" || *name == "" {
		return errors.New("-broker, -customer, -thing and -name are required")
	}
	if *args != "" && !json.Valid([]byte(*args)) {
		return errors.New("-args is not valid JSON")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+30*time.Second)
	defer cancel()

	var conn net.Conn
	var err error
	d := &net.Dialer{Timeout: 20 * time.Second}
	if *certFile != "" {
		cert, lerr := tls.LoadX509KeyPair(*certFile, *keyFile)
		if lerr != nil {
			return lerr
		}
		conn, err = (&tls.Dialer{NetDialer: d, Config: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"x-amzn-mqtt-ca"}}}).DialContext(ctx, "tcp", *broker)
	} else {
		conn, err = d.DialContext(ctx, "tcp", *broker)
	}
	if err != nil {
		return err
	}
	var sender *command.Sender
	client := paho.NewClient(paho.ClientConfig{ClientID: *clientID, Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { return sender.Received(pr) },
		}})
	sender = command.NewSender(client)
	if _, err := client.Connect(ctx, &paho.Connect{ClientID: *clientID, CleanStart: true, KeepAlive: 30}); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer client.Disconnect(&paho.Disconnect{})
	if _, err := client.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: command.ResultFilter(*customer), QoS: 1}}}); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	c := command.Command{ID: *id, Name: *name, Deadline: time.Now().Add(*timeout)}
	if *args != "" {
		c.Args = json.RawMessage(*args)
	}
	res, err := sender.Send(ctx, command.Target{Customer: *customer, Thing: *thing}, c)
	if err != nil {
		return err
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return nil
}
