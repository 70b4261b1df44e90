// What one sync did; the schema is the API's (http/schemas.ts).
import type { Static } from 'typebox'
import type { SyncResultSchema } from '../http/schemas.js'

export type SyncResult = Static<typeof SyncResultSchema>
