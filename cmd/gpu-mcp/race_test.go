//go:build race

package main

// raceEnabled: the race detector slows mcp-go's request handling about threefold.
const raceEnabled = true
