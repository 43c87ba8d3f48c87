"""Messages delivered later: RocketMQ 4.x's delay levels and RocketMQ 5's timers, the engine's
ScheduleService and TimerService driven from the broker's loop."""
