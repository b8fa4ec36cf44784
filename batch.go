package sesh

// Auto-pipelining defaults; see Options.Pipelines.
const (
	defaultPipelines = 2
	maxPipelines     = 64
)
