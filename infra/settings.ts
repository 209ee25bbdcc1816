/**
 * Every tunable of the AWS deployment in one place. Values are read when `sst deploy` (or `diff`) evaluates the
 * app, so each can be overridden from the deploying shell (`FERRY_COPY_CONCURRENCY=16 npx sst deploy --stage prod`)
 * without editing code; the defaults are what a first deployment should use.
 */
const env = process.env;

function int(name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${raw}: expected an integer from ${min} to ${max}`);
  return n;
}

function list(name: string): string[] {
  return (env[name] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** Lambda's hard limit, and what the copy and plan functions get: a range copy yields its cursor before it. */
const COPY_TIMEOUT_MINUTES = 15;

export const settings = {
  copy: {
    timeoutMinutes: COPY_TIMEOUT_MINUTES,
    /** 1769 MB is where Lambda gives a full vCPU; the COPY pipe is bound by one core. */
    memory: '1769 MB',
    /**
     * SQS messages per invocation. 1, because the records of a batch are copied one after another: a later record
     * that finds too little time left is handed back, and every hand-back counts as a delivery toward the job's
     * maxAttempts. Parallelism comes from concurrency, not from batches.
     */
    batchSize: int('FERRY_COPY_BATCH_SIZE', 1, 1, 10),
    /**
     * Copy Lambdas running at once (the event source mapping's maximumConcurrency, 2..1000). Each opens one
     * connection to the source and one to the target per invocation and closes them before it returns, so this
     * bounds the load on both databases; Validate refuses to start when the databases' free connections
     * (max_connections less reserved and used) do not fit it.
     */
    maxConcurrency: int('FERRY_COPY_CONCURRENCY', 8, 2, 1000),
    /** Cap on one chunk's bytes (rows scale down to it), so a chunk of wide rows still commits well within the time. */
    batchBytes: int('FERRY_COPY_BATCH_BYTES', 64 * 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024),
  },
  queue: {
    /**
     * Receives before SQS moves a message to the dead-letter queue. Ferry counts deliveries itself and marks a job
     * failed after the config's `maxAttempts` (default 5, so delivery 6 records the failure); this must stay above
     * that, or a job's last message would vanish into the DLQ with the job still pending and the workflow polling.
     */
    maxReceiveCount: int('FERRY_MAX_RECEIVE_COUNT', 10, 2, 1000),
    /** AWS asks for at least 6x the subscriber's timeout, so a throttled or retried batch is not delivered twice. */
    visibilityTimeoutMinutes: COPY_TIMEOUT_MINUTES * 6 + 5,
    /** SQS's maximum, for both queues: pending ranges may wait long for a free copy slot, DLQ messages for a human. */
    retentionDays: 14,
  },
  functions: {
    /** Validate, enqueue, progress, start-streamer, status, record-failure: catalog reads and a few API calls. */
    timeoutMinutes: 5,
    memory: '512 MB',
    /** Plan describes every table and samples key quantiles; large schemas take minutes. */
    planTimeoutMinutes: COPY_TIMEOUT_MINUTES,
    planMemory: '1024 MB',
    /** Graviton is about 20% cheaper per GB-second; the handlers bundle no native code (pg is pure JavaScript). */
    architecture: 'arm64',
    logRetention: '1 month',
  },
  streamer: {
    /** x86_64 so the image builds natively on ordinary CI machines (better-sqlite3 compiles in the build stage). */
    architecture: 'x86_64',
    cpu: '1 vCPU',
    /** Decoding bursts buffer in memory (pg-logical-replication has no backpressure), so leave headroom. */
    memory: '2 GB',
    /** Fargate's maximum: SIGTERM commits the open batch and writes the checkpoint before SIGKILL. */
    stopTimeoutSeconds: 120,
    logRetention: '1 month',
    /**
     * The health signal: a stream whose checkpoint has not moved for this long while the source has WAL to send is
     * stalled; the streamer exits 1 and the supervisor starts a fresh one. A healthy stream checkpoints at least
     * once per heartbeat (cdc.heartbeatSeconds), even when the source is idle.
     */
    stallSeconds: int('FERRY_STALL_SECONDS', 300, 30, 86_400),
    healthIntervalSeconds: 30,
  },
  workflow: {
    /**
     * Polls of one execution before the loop continues in a new one: Step Functions ends an execution at 25,000
     * history events, and one poll costs about 10 (Wait, Pass, Task, Choice), so 1,000 leaves room for retries.
     */
    maxPolls: int('FERRY_MAX_POLLS', 1000, 1, 2000),
    /** Execution history is in the console anyway; the log group is for alarms and for failures past 90 days. */
    logLevel: (env.FERRY_WORKFLOW_LOG_LEVEL ?? 'ERROR') as 'ALL' | 'ERROR' | 'FATAL' | 'OFF',
    /** The input carries `${FERRY_SOURCE_URL}`-style placeholders, not credentials, so it is safe to log. */
    includeExecutionData: true,
    logRetentionDays: 30,
  },
  vpc: {
    /**
     * An existing VPC (where the databases live) instead of a new one: FERRY_VPC_ID, FERRY_VPC_PRIVATE_SUBNETS and
     * FERRY_VPC_SECURITY_GROUPS (comma-separated). Its private subnets need a route to the AWS APIs (NAT, or VPC
     * endpoints for DynamoDB, SQS, ECS, ECR, Secrets Manager and CloudWatch Logs), and the security groups must be
     * allowed into the databases.
     */
    existing: env.FERRY_VPC_ID
      ? {
          id: env.FERRY_VPC_ID,
          privateSubnets: list('FERRY_VPC_PRIVATE_SUBNETS'),
          securityGroups: list('FERRY_VPC_SECURITY_GROUPS'),
        }
      : undefined,
    /**
     * NAT for a new VPC: Lambdas sit in private subnets and need it for SQS, ECS and any database outside the VPC.
     * `ec2` is a fck-nat t4g.nano per AZ (a few dollars a month); `managed` is AWS's NAT Gateway (about $32 a month
     * per AZ plus $0.045/GB).
     */
    nat: (env.FERRY_VPC_NAT ?? 'ec2') as 'ec2' | 'managed',
    az: int('FERRY_VPC_AZ', 2, 1, 6),
  },
  alarms: {
    /** An address to subscribe to the alarm topic at deploy time (it must confirm by mail); or subscribe later. */
    email: env.FERRY_ALARM_EMAIL || undefined,
    /** CDC lag (seconds from a source commit to its apply on the target) that alarms, over 3 of 5 minutes. */
    cdcLagSeconds: int('FERRY_ALARM_CDC_LAG_SECONDS', 300, 1, 86_400),
    /** WAL the source keeps for the slot (bytes) that alarms: at this size the source's disk is at risk. */
    retainedWalBytes: int('FERRY_ALARM_RETAINED_WAL_MB', 10_240, 1, 10_000_000) * 1024 * 1024,
    /** Age of the oldest range job waiting in the queue (seconds) that alarms: the copies are not keeping up. */
    oldestMessageSeconds: int('FERRY_ALARM_OLDEST_MESSAGE_MINUTES', 360, 1, 20_160) * 60,
    /** Streamer restarts in an hour that alarm (one is a blip the supervisor handled; several is a crash loop). */
    streamerRestartsPerHour: int('FERRY_ALARM_STREAMER_RESTARTS', 3, 1, 1000),
  },
  trigger: {
    /** An EventBridge schedule, e.g. `rate(1 day)` or `cron(0 3 * * ? *)`. */
    schedule: env.FERRY_SYNC_SCHEDULE || undefined,
    /** An EventBridge event pattern as JSON, e.g. `{"source":["ferry.manual"]}`. */
    eventPattern: env.FERRY_SYNC_EVENT_PATTERN || undefined,
    /** The execution input: a Ferry config file (YAML or JSON), read at deploy time. Required with either above. */
    inputFile: env.FERRY_SYNC_INPUT_FILE || undefined,
  },
} as const;

if (settings.vpc.existing && (!settings.vpc.existing.privateSubnets.length || !settings.vpc.existing.securityGroups.length)) {
  throw new Error('FERRY_VPC_ID needs FERRY_VPC_PRIVATE_SUBNETS and FERRY_VPC_SECURITY_GROUPS (comma-separated ids)');
}
if (!['ec2', 'managed'].includes(settings.vpc.nat)) throw new Error(`FERRY_VPC_NAT=${settings.vpc.nat}: expected ec2 or managed`);
if (!['ALL', 'ERROR', 'FATAL', 'OFF'].includes(settings.workflow.logLevel)) {
  throw new Error(`FERRY_WORKFLOW_LOG_LEVEL=${settings.workflow.logLevel}: expected ALL, ERROR, FATAL or OFF`);
}
