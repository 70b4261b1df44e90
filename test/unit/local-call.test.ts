import t from 'tap'
import { localFailure } from '../../src/salt/local-call.js'

t.test('what counts as a failed Salt function', async (t) => {
  t.equal(localFailure(true), null)
  t.equal(localFailure('restarted'), null)
  t.equal(localFailure({ retcode: 0, stdout: '' }), null)
  t.equal(localFailure(false), 'it returned False')
  t.match(localFailure({ retcode: 2, stderr: 'boom\n', stdout: '' }), /exit code 2: boom/)
  t.equal(localFailure({ retcode: 1, stderr: '', stdout: '' }), 'exit code 1')
  t.match(localFailure('\'service.reload\' is not available.'), /not available/)
  t.match(localFailure('The minion function caused an exception: Traceback'), /exception/)
  t.match(localFailure('ERROR: no such service'), /ERROR/)
  t.equal(localFailure({ result: false, comment: 'nope' }), 'nope')
  t.equal(localFailure({ result: false }), 'it returned result: False')
})
