// The baseline for B4: a bare Fastify route that answers 202, nothing else.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.post('/hooks/salt', async (_request, reply) => await reply.code(202).send({ accepted: true }))
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
