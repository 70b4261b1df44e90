// One style for src, test, bench and lab: typescript-eslint's recommended rules, @stylistic's
// standard-like layout (no semicolons, single quotes, two spaces) and a 120-column line for code.
import js from '@eslint/js'
import stylistic from '@stylistic/eslint-plugin'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.venv/', 'coverage/', '.tap/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  stylistic.configs.customize({ semi: false, indent: 2, quotes: 'single', arrowParens: true, braceStyle: '1tbs' }),
  {
    rules: {
      '@stylistic/max-statements-per-line': 'off',
      // A variable a teardown reads is declared before it is set.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `const { dropped: _, ...rest } = x` is how a field is left out.
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      '@stylistic/operator-linebreak': ['error', 'before', { overrides: { '=': 'after' } }],
      '@stylistic/max-len': ['error', {
        code: 120,
        ignoreUrls: true,
        ignoreStrings: true,
        ignoreTemplateLiterals: true,
        ignoreRegExpLiterals: true,
      }],
    },
  },
  {
    // Tests read JSON answers as they come.
    files: ['test/**', 'lab/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
)
