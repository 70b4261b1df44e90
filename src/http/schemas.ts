// HTTP shapes shared by several routes (the domain shapes are defined where they live).
import { Type } from 'typebox'

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String(),
})

export const WaitQuery = Type.Object({
  wait: Type.Boolean({ default: false, description: 'wait for the sync and return its result' }),
})
