/** The demo group's word-level vocabulary and the sentences its encoder head is fitted on. */

export const DEMO_SPECIALS = ['<pad>', '<bos>', '<eos>', '<unk>', '<start_of_turn>', '<end_of_turn>'] as const

export const DEMO_FUNCTION_WORDS = [
  'the', 'a', 'an', 'and', 'or', 'but', 'of', 'in', 'on', 'at', 'to', 'from', 'with', 'by', 'for',
  'is', 'are', 'was', 'were', 'be', 'it', 'he', 'she', 'they', 'we', 'i', 'you', 'this', 'that',
  'not', 'very', 'too', 'all', 'some', 'no', 'my', 'your', 'his', 'her', 'their', 'our', 'has',
  'have', 'had', 'will', 'can', 'do', 'does', 'did', 'what', 'who', 'where', 'when', 'why', 'how'
] as const

export const DEMO_CONTENT_WORDS = [
  // animals
  'cat', 'dog', 'bird', 'fish', 'horse', 'cow', 'sheep', 'mouse', 'lion', 'tiger', 'bear', 'wolf',
  'fox', 'rabbit', 'snake', 'frog', 'duck', 'owl',
  // food
  'bread', 'apple', 'cheese', 'milk', 'soup', 'rice', 'cake', 'tea', 'coffee', 'honey', 'egg', 'pie',
  // places and things
  'house', 'garden', 'river', 'forest', 'city', 'school', 'market', 'kitchen', 'mountain', 'sea',
  'road', 'bridge', 'library', 'window', 'door', 'table', 'chair', 'book', 'letter', 'lamp', 'boat',
  'train', 'car', 'clock', 'key', 'ship', 'island', 'castle', 'village', 'park',
  // people
  'king', 'queen', 'child', 'teacher', 'doctor', 'farmer', 'sailor', 'baker', 'friend', 'mother',
  'father', 'sister', 'brother', 'student', 'artist', 'pilot',
  // verbs
  'sat', 'ran', 'ate', 'drank', 'saw', 'found', 'lost', 'made', 'read', 'wrote', 'sang', 'slept',
  'walked', 'jumped', 'opened', 'closed', 'built', 'painted', 'carried', 'watched', 'loved',
  'bought', 'sold', 'cooked', 'swam', 'flew', 'climbed', 'visited', 'played', 'waited',
  // adjectives
  'red', 'blue', 'green', 'yellow', 'black', 'white', 'big', 'small', 'old', 'young', 'happy', 'sad',
  'quiet', 'loud', 'warm', 'cold', 'bright', 'dark', 'fast', 'slow', 'sweet', 'tired', 'brave',
  'gentle', 'strange', 'golden',
  // time
  'morning', 'evening', 'night', 'winter', 'summer', 'today', 'yesterday', 'rain', 'snow', 'sun',
  // chat roles (the demo chat template names them)
  'user', 'model', 'system'
] as const

export const DEMO_PUNCTUATION = ['.', ',', '?', '!'] as const

/** Sentences the encoder head is fitted on; tests check explanations on these and on others. */
export const DEMO_SENTENCES = [
  'The cat sat on the red chair.',
  'A dog ran to the river in the morning.',
  'The old farmer sold cheese at the market.',
  'My sister read a book in the library.',
  'The queen visited the castle on the island.',
  'A small bird sang in the garden.',
  'The baker made bread and cake for the village.',
  'The young pilot flew over the mountain.',
  'A brave sailor carried the key to the ship.',
  'The teacher wrote a letter to the student.',
  'We walked by the bridge in the evening.',
  'The green frog jumped into the quiet river.',
  'Her brother painted the door blue.',
  'The tired horse slept in the warm house.',
  'A fox watched the duck from the forest.',
  'They cooked soup and rice in the kitchen.',
  'The child drank milk at the table.',
  'The king lost his golden clock.',
  'A strange owl climbed the dark tree.',
  'Their father bought coffee and honey in the city.',
  'The gentle doctor waited at the school.',
  'In winter the sea was cold and loud.',
  'The artist loved the bright summer sun.',
  'A wolf and a bear swam in the river.',
  'My friend opened the window at night.',
  'The rabbit ate an apple in the park.',
  'Yesterday the train was very slow.',
  'The lion saw the tiger by the road.',
  'Our mother closed the book and slept.',
  'The sad mouse found some sweet pie.'
] as const
