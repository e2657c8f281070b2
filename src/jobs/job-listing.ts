import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobState } from './job-schema.js';

type StateKey = 'wait' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed';
type Source = { key: StateKey; raw: 'queued' | 'active' | 'completed' | 'failed' };

const QUEUED: Source[] = [
  { key: 'wait', raw: 'queued' },
  { key: 'prioritized', raw: 'queued' },
  { key: 'delayed', raw: 'queued' },
];
const ACTIVE: Source[] = [{ key: 'active', raw: 'active' }];
const COMPLETED: Source[] = [{ key: 'completed', raw: 'completed' }];
const FAILED: Source[] = [{ key: 'failed', raw: 'failed' }];

/** BullMQ's state keys each listed state is read from, and the state its jobs start out as. */
const SOURCES: Record<JobState, Source[]> = {
  queued: QUEUED,
  active: ACTIVE,
  completed: COMPLETED,
  failed: FAILED,
  cancelled: [...QUEUED, ...ACTIVE, ...FAILED],
};
const ALL = [...QUEUED, ...ACTIVE, ...COMPLETED, ...FAILED];

/*
 * One page of job ids, newest first, with the number of jobs that match: sorted and cut in Redis,
 * so a listing moves only the page's ids, not every retained job (retention and JOB_MAX_WAITING
 * bound how many the script reads). A job's listed state is worked out as TrainingJobs shows it:
 * a cancel request or the cancel reason makes it 'cancelled' unless it completed.
 * KEYS: state keys. ARGV: job key prefix, ending key prefix, cancel reason, wanted state ('' for
 * any), offset, limit, then the starting state of each key's jobs.
 */
const LIST = `
local jobPrefix, endingPrefix, cancelReason, wanted = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local offset, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
local rows = {}
for i, key in ipairs(KEYS) do
  local raw = ARGV[6 + i]
  local ids
  if redis.call('TYPE', key).ok == 'list' then
    ids = redis.call('LRANGE', key, 0, -1)
  else
    ids = redis.call('ZRANGE', key, 0, -1)
  end
  for _, id in ipairs(ids) do
    local job = redis.call('HMGET', jobPrefix .. id, 'timestamp', 'failedReason')
    if job[1] then
      local state = raw
      if wanted ~= '' and raw ~= 'completed' then
        if (raw == 'failed' and job[2] == cancelReason) or redis.call('GET', endingPrefix .. id) == 'cancelled' then
          state = 'cancelled'
        end
      end
      if wanted == '' or state == wanted then rows[#rows + 1] = { tonumber(job[1]), id } end
    end
  end
end
table.sort(rows, function(a, b)
  if a[1] ~= b[1] then return a[1] > b[1] end
  return a[2] > b[2]
end)
local page = { #rows }
for i = offset + 1, math.min(offset + limit, #rows) do page[#page + 1] = rows[i][2] end
return page`;

export interface ListingKeys {
  /** Prefix of the key of each job's ending (src/jobs/job-endings.ts). */
  endingPrefix: string;
  /** The failure reason of a job cancelled on request. */
  cancelReason: string;
}

/** Ids of one page of jobs in `state` (any when absent), newest first, and how many match. */
export async function listJobIds(
  redis: Redis,
  queue: Queue,
  keys: ListingKeys,
  options: { state?: JobState; limit: number; offset: number },
): Promise<{ ids: string[]; total: number }> {
  const sources = options.state ? SOURCES[options.state] : ALL;
  const [total, ...ids] = (await redis.eval(
    LIST,
    sources.length,
    ...sources.map((s) => queue.keys[s.key]!),
    `${queue.qualifiedName}:`,
    keys.endingPrefix,
    keys.cancelReason,
    options.state ?? '',
    options.offset,
    options.limit,
    ...sources.map((s) => s.raw),
  )) as [number, ...string[]];
  return { ids, total };
}
