import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Machines call the route every few seconds (a load balancer's health check, a Prometheus
     * scrape): its request lines go at debug, so only a failed poll shows at info; @default false
     */
    poll?: boolean;
  }
}

/**
 * Fastify's request lines ('incoming request', 'request completed'), with polls at debug: a load
 * balancer checking /healthz every 5 s would otherwise write 35,000 info lines a day per replica.
 * A poll that fails (4xx, 5xx or an error) is still told at info or error, with the request it
 * answered, since its 'incoming request' line was at debug and the URL would be missing.
 */
export class RequestLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>) {
    if (!isPoll(request)) return super.incomingRequest(request, reply, metadata);
    if (this.isLogDisabled(request)) return;
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
    metadata?: Record<string, unknown>,
  ) {
    if (!isPoll(request)) return super.requestCompleted(error, request, reply, metadata);
    if (this.isLogDisabled(request)) return;
    const fields = { req: request, res: reply, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...fields, err: error }, 'request errored');
    else if (reply.statusCode >= 400) reply.log.info(fields, 'request completed');
    else reply.log.debug(fields, 'request completed');
  }
}

// Not-found requests and framework errors before routing have no route config.
const isPoll = (request: FastifyRequest) => request.routeOptions.config?.poll === true;
