//! The event bus (EventBus port) on Amazon EventBridge with one SQS queue per consuming service
